// SearchDialog: see search_dialog.h.
#include "ui/search_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include "ui/remote_jobs_view.h"

namespace qs::ui {

SearchDialog::SearchDialog(const QString& projectDir, const QStringList& profiles, QWidget* parent)
    : QDialog(parent),
      project_(projectDir),
      space_(new QLineEdit(this)),
      trials_(new QSpinBox(this)),
      objectives_(new QLineEdit(QStringLiteral("ppl,bits"), this)),
      algo_(new QComboBox(this)),
      seed_(new QSpinBox(this)),
      population_(new QSpinBox(this)),
      runOn_(new QComboBox(this)),
      error_(new QLabel(this)) {
  setObjectName(QStringLiteral("searchDialog"));
  setWindowTitle(tr("Mixed-Precision Search"));
  space_->setObjectName(QStringLiteral("searchSpace"));
  space_->setPlaceholderText(tr("search space YAML (docs/FORMATS.md), e.g. resources/presets/search/…"));
  auto* browse = new QPushButton(tr("Browse…"), this);
  auto* spaceRow = new QHBoxLayout;
  spaceRow->addWidget(space_, 1);
  spaceRow->addWidget(browse);
  trials_->setObjectName(QStringLiteral("searchTrials"));
  trials_->setRange(1, 100000);
  trials_->setValue(24);
  trials_->setToolTip(tr("Budget: distinct configurations evaluated (ones already in the store count and are reused)"));
  objectives_->setObjectName(QStringLiteral("searchObjectives"));
  objectives_->setToolTip(tr("Two or more of ppl, bits (avg bits per weight), abits (per input), acc:TASK"));
  algo_->setObjectName(QStringLiteral("searchAlgo"));
  algo_->addItem(QStringLiteral("NSGA-II"), QStringLiteral("nsga2"));
  algo_->addItem(tr("Random (baseline)"), QStringLiteral("random"));
  seed_->setRange(0, 1 << 30);
  seed_->setToolTip(tr("Same seed, same search"));
  population_->setRange(8, 1024);
  population_->setSingleStep(4);
  population_->setValue(8);
  population_->setToolTip(tr("NSGA-II population: the trials of one generation (a Slurm job array each)"));
  runOn_->setObjectName(QStringLiteral("searchRunOn"));
  fillRunOnCombo(runOn_, profiles);
  runOn_->setToolTip(tr("Slurm: each generation's new trials run as one job array; the trials come back into "
                        "the run store and the search goes on exactly as it would here"));
  error_->setObjectName(QStringLiteral("searchError"));
  error_->setWordWrap(true);
  error_->setStyleSheet(QStringLiteral("color: #b00020"));

  auto* form = new QFormLayout;
  form->addRow(tr("Space"), spaceRow);
  form->addRow(tr("Trials"), trials_);
  form->addRow(tr("Objectives"), objectives_);
  form->addRow(tr("Algorithm"), algo_);
  form->addRow(tr("Seed"), seed_);
  form->addRow(tr("Population"), population_);
  form->addRow(tr("Run on"), runOn_);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  buttons->button(QDialogButtonBox::Ok)->setText(tr("Search"));
  auto* v = new QVBoxLayout(this);
  v->addLayout(form);
  v->addWidget(error_);
  v->addWidget(buttons);
  connect(browse, &QPushButton::clicked, this, &SearchDialog::browse);
  connect(buttons, &QDialogButtonBox::accepted, this, &SearchDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &SearchDialog::reject);
  resize(620, sizeHint().height());
}

void SearchDialog::setSpaceFile(const QString& path) { space_->setText(path); }

void SearchDialog::browse() {
  const QString f = QFileDialog::getOpenFileName(this, tr("Search space"), project_, tr("YAML (*.yaml *.yml)"));
  if (!f.isEmpty()) space_->setText(f);
}

workflow::SearchJobOptions SearchDialog::options() const {
  workflow::SearchJobOptions o;
  o.projectDir = project_.toStdString();
  o.spaceFile = space_->text().trimmed().toStdString();
  o.trials = trials_->value();
  o.objectives = objectives_->text().trimmed().toStdString();
  o.algo = algo_->currentData().toString().toStdString();
  o.seed = static_cast<uint64_t>(seed_->value());
  o.population = population_->value();
  const QString profile = runOn_->currentData().toString();
  if (!profile.isEmpty()) {
    o.cluster.backend = "slurm";
    o.cluster.profile = profile.toStdString();
  }
  return o;
}

QString SearchDialog::problem() const {
  const QString space = space_->text().trimmed();
  if (space.isEmpty()) return tr("Choose a search space file.");
  if (!QFileInfo(space).isFile()) return tr("%1 does not exist.").arg(space);
  if (objectives_->text().split(QLatin1Char(','), Qt::SkipEmptyParts).size() < 2)
    return tr("Give at least two objectives, e.g. ppl,bits.");
  return QString();
}

void SearchDialog::accept() {
  const QString p = problem();
  error_->setText(p);
  if (p.isEmpty()) QDialog::accept();
}

}  // namespace qs::ui

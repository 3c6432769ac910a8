#include "ui/export_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QTimer>
#include <QTreeWidget>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>

namespace qs::ui {
namespace {

QString fromStd(const std::string& s) { return QString::fromStdString(s); }
QString sizeText(int64_t bytes) { return fromStd(workflow::formatFileSize(bytes)); }

QString runText(const workflow::ExportableRun& r) {
  QString details = r.bits < 16 ? QStringLiteral("%1 w%2").arg(fromStd(r.method)).arg(r.bits) : QStringLiteral("FP weights");
  if (r.migration != "none" && !r.migration.empty()) details += QStringLiteral(" + %1").arg(fromStd(r.migration));
  return QStringLiteral("#%1  %2  (%3)").arg(r.id).arg(fromStd(r.name), details);
}

}  // namespace

struct ExportDialog::PlanOutcome {
  workflow::ExportJobResult result;
  QString error;  // non-empty: the plan failed with this message
};

ExportDialog::ExportDialog(const QString& projectDir, qint64 preferredRun, QWidget* parent)
    : QDialog(parent),
      projectDir_(projectDir),
      run_(new QComboBox(this)),
      format_(new QComboBox(this)),
      formatHelp_(new QLabel(this)),
      dest_(new QLineEdit(this)),
      browse_(new QPushButton(tr("Browse…"), this)),
      dtype_(new QComboBox(this)),
      shardMiB_(new QSpinBox(this)),
      gptqFormat_(new QComboBox(this)),
      ggufType_(new QComboBox(this)),
      allowPadding_(new QCheckBox(tr("Pack layers not divisible by 32 (--allow-padding; QuantScope reloads them, "
                                     "AutoGPTQ kernels do not)"), this)),
      replace_(new QCheckBox(tr("Replace the destination if it exists (only once the new one is complete)"), this)),
      files_(new QTreeWidget(this)),
      summary_(new QLabel(this)),
      exportButton_(nullptr),
      watcher_(new QFutureWatcher<std::shared_ptr<PlanOutcome>>(this)),
      debounce_(new QTimer(this)),
      plan_(std::make_unique<workflow::ExportJobResult>()) {
  setWindowTitle(tr("Export Quantized Run"));
  setObjectName(QStringLiteral("exportDialog"));
  try {
    runs_ = workflow::exportableRuns(projectDir.toStdString());
  } catch (const std::exception& e) {
    planError_ = QString::fromUtf8(e.what());
  }
  for (const auto& r : runs_) run_->addItem(runText(r), QVariant::fromValue<qint64>(r.id));
  for (const auto& f : workflow::exportFormats()) format_->addItem(fromStd(f.name), fromStd(f.name));
  formatHelp_->setWordWrap(true);
  formatHelp_->setObjectName(QStringLiteral("formatHelp"));
  dtype_->addItems({QStringLiteral("float16"), QStringLiteral("bfloat16"), QStringLiteral("float32")});
  shardMiB_->setRange(1, 1 << 20);
  shardMiB_->setValue(5120);
  shardMiB_->setSuffix(tr(" MiB"));
  gptqFormat_->addItems({QStringLiteral("gptq"), QStringLiteral("gptq_v2")});
  gptqFormat_->setToolTip(tr("gptq: AutoGPTQ v1 (zero points stored minus one), read by every GPTQ loader; gptq_v2: stored as is, "
                                "read by GPTQModel and QuantScope but misread by AutoGPTQ 0.7"));
  for (const char* t : {"F16", "F32", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_1", "Q4_0", "Q3_K_L", "Q3_K_M",
                        "Q3_K_S", "Q2_K"})
    ggufType_->addItem(QString::fromLatin1(t));
  // Every matrix in one K type (llama-quantize --pure): the exact export of a --target gguf:T run.
  for (const char* t : {"Q5_K", "Q4_K", "Q3_K", "Q2_K_PURE"}) {
    ggufType_->addItem(QString::fromLatin1(t));
    ggufType_->setItemData(ggufType_->count() - 1, tr("every matrix %1 (llama-quantize --pure), the output layer Q6_K")
                                                       .arg(QString::fromLatin1(t).section(QLatin1Char('_'), 0, 1)),
                           Qt::ToolTipRole);
  }
  ggufType_->setObjectName(QStringLiteral("ggufType"));
  ggufType_->setToolTip(tr("llama.cpp type of the matrices, rounded as llama-quantize rounds them; the output layer "
                           "and rows that do not split into the type's blocks get the types llama-quantize gives "
                           "them (the plan lists them). F32 keeps exactly the weights QuantScope evaluated, and so does the type of "
                           "a run quantized with --target gguf:T (its own codes are written)."));
  files_->setColumnCount(2);
  files_->setHeaderLabels({tr("File"), tr("Size")});
  files_->setRootIsDecorated(false);
  files_->header()->setSectionResizeMode(0, QHeaderView::Stretch);
  files_->header()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
  files_->setObjectName(QStringLiteral("exportFiles"));
  summary_->setWordWrap(true);
  summary_->setObjectName(QStringLiteral("exportSummary"));
  summary_->setTextFormat(Qt::RichText);

  auto* destRow = new QHBoxLayout;
  destRow->addWidget(dest_, 1);
  destRow->addWidget(browse_);
  auto* form = new QFormLayout;
  form->addRow(tr("&Run:"), run_);
  form->addRow(tr("&Format:"), format_);
  form->addRow(QString(), formatHelp_);
  auto* destLabel = new QLabel(tr("&Destination:"), this);
  destLabel->setBuddy(dest_);
  form->addRow(destLabel, destRow);
  form->addRow(QString(), replace_);
  form->addRow(tr("&Tensor dtype:"), dtype_);
  form->addRow(tr("&Shard above:"), shardMiB_);
  form->addRow(tr("&GPTQ checkpoint:"), gptqFormat_);
  form->addRow(QString(), allowPadding_);
  form->addRow(tr("GG&UF type:"), ggufType_);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Cancel, this);
  exportButton_ = buttons->addButton(tr("&Export"), QDialogButtonBox::AcceptRole);
  exportButton_->setObjectName(QStringLiteral("exportButton"));
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

  auto* v = new QVBoxLayout(this);
  v->addLayout(form);
  v->addWidget(new QLabel(tr("<b>What will be written</b>"), this));
  v->addWidget(files_, 1);
  v->addWidget(summary_);
  v->addWidget(buttons);
  resize(640, 560);

  debounce_->setSingleShot(true);
  debounce_->setInterval(250);
  connect(debounce_, &QTimer::timeout, this, &ExportDialog::startPlan);
  connect(run_, qOverload<int>(&QComboBox::currentIndexChanged), this, &ExportDialog::onRunChanged);
  connect(format_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
    if (dest_->text() == lastAutoDest_) {
      lastAutoDest_ = defaultDestination();
      dest_->setText(lastAutoDest_);
    }
    schedulePlan();
  });
  for (QComboBox* c : {dtype_, gptqFormat_})
    connect(c, qOverload<int>(&QComboBox::currentIndexChanged), this, &ExportDialog::schedulePlan);
  connect(ggufType_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
    if (dest_->text() == lastAutoDest_) {
      lastAutoDest_ = defaultDestination();
      dest_->setText(lastAutoDest_);
    }
    schedulePlan();
  });
  connect(shardMiB_, qOverload<int>(&QSpinBox::valueChanged), this, &ExportDialog::schedulePlan);
  connect(dest_, &QLineEdit::textChanged, this, &ExportDialog::schedulePlan);
  connect(allowPadding_, &QCheckBox::toggled, this, &ExportDialog::schedulePlan);
  connect(replace_, &QCheckBox::toggled, this, &ExportDialog::updateButtons);
  connect(browse_, &QPushButton::clicked, this, [this] {
    const QString start = QFileInfo(dest_->text()).absolutePath();
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Export Into"), start);
    if (!dir.isEmpty()) dest_->setText(QDir(dir).filePath(QFileInfo(dest_->text()).fileName()));
  });
  connect(watcher_, &QFutureWatcher<std::shared_ptr<PlanOutcome>>::finished, this, [this] {
    if (watcher_->property("generation").toULongLong() != generation_) {
      startPlan();  // options changed while planning: plan the newest
      return;
    }
    planning_ = false;
    const auto r = watcher_->result();
    planError_ = r->error;
    if (r->error.isEmpty()) *plan_ = r->result;
    showPlan();
    Q_EMIT planReady();
  });

  int pick = 0;
  for (size_t i = 0; i < runs_.size(); ++i)
    if (runs_[i].id == preferredRun) pick = static_cast<int>(i);
  if (runs_.empty()) {
    if (planError_.isEmpty()) planError_ = tr("This project has no finished quantize run to export yet (Jobs › Quantize & Evaluate).");
    showPlan();
  } else {
    run_->setCurrentIndex(pick);
    onRunChanged();
  }
}

ExportDialog::~ExportDialog() { watcher_->waitForFinished(); }

int ExportDialog::runCount() const { return static_cast<int>(runs_.size()); }

workflow::ExportJobOptions ExportDialog::options() const {
  workflow::ExportJobOptions o;
  o.projectDir = projectDir_.toStdString();
  o.runId = run_->currentData().toLongLong();
  o.format = format_->currentData().toString().toStdString();
  o.outDir = dest_->text().trimmed().toStdString();
  o.force = replace_->isChecked();
  o.dtype = dtype_->currentText().toStdString();
  o.maxShardMiB = shardMiB_->value();
  o.gptqFormat = gptqFormat_->currentText().toStdString();
  o.allowPadding = allowPadding_->isChecked();
  o.ggufType = ggufType_->currentText().toStdString();
  return o;
}

bool ExportDialog::selectRun(qint64 id) {
  const int i = run_->findData(QVariant::fromValue<qint64>(id));
  if (i < 0) return false;
  run_->setCurrentIndex(i);
  return true;
}

bool ExportDialog::selectFormat(const QString& format) {
  const int i = format_->findData(format);
  if (i < 0) return false;
  auto* model = qobject_cast<QStandardItemModel*>(format_->model());
  if (model && model->item(i) && !model->item(i)->isEnabled()) return false;  // the run cannot provide it
  format_->setCurrentIndex(i);
  return true;
}

void ExportDialog::setDestination(const QString& dir) { dest_->setText(dir); }
void ExportDialog::setReplaceExisting(bool on) { replace_->setChecked(on); }

QString ExportDialog::defaultDestination() const {
  const qint64 id = run_->currentData().toLongLong();
  if (format_->currentData().toString() == QLatin1String("gguf"))  // one file, named by its type
    return QDir(projectDir_).filePath(QStringLiteral("exports/run-%1-%2.gguf").arg(id).arg(ggufType_->currentText().toLower()));
  return QDir(projectDir_).filePath(QStringLiteral("exports/run-%1-%2").arg(id).arg(format_->currentData().toString()));
}

void ExportDialog::onRunChanged() {
  const int i = run_->currentIndex();
  if (i < 0 || i >= static_cast<int>(runs_.size())) return;
  const auto& r = runs_[static_cast<size_t>(i)];
  // Formats the run cannot provide are shown disabled, with the reason as tooltip.
  auto* model = qobject_cast<QStandardItemModel*>(format_->model());
  int firstOk = -1;
  for (int k = 0; k < format_->count(); ++k) {
    const std::string name = format_->itemData(k).toString().toStdString();
    const bool ok = std::find(r.formats.begin(), r.formats.end(), name) != r.formats.end();
    if (model) {
      if (QStandardItem* item = model->item(k)) {
        item->setEnabled(ok);
        QString why = name == "scale-shift" ? tr("the run has no OS+/SmoothQuant migration")
                      : !r.limits.empty()   ? fromStd(r.limits)
                      : name == "gguf"      ? tr("llama.cpp has no architecture for this model (OPT), or its Falcon has no place for OS+ shift biases")
                                            : tr("the run did not quantize weights to 2/3/4/8 bits");
        item->setToolTip(ok ? QString() : why);
      }
    }
    if (ok && firstOk < 0) firstOk = k;
  }
  const std::string cur = format_->currentData().toString().toStdString();
  if (std::find(r.formats.begin(), r.formats.end(), cur) == r.formats.end() && firstOk >= 0) {
    // Prefer the most useful format the run has: its packed weights when there are any.
    int pick = format_->findData(QStringLiteral("gptq"));
    if (pick < 0 || std::find(r.formats.begin(), r.formats.end(), "gptq") == r.formats.end()) pick = firstOk;
    format_->setCurrentIndex(pick);
  }
  // A run on a llama.cpp grid (quantize --target gguf:T) is exported exactly in that type.
  if (!r.ggufType.empty()) ggufType_->setCurrentText(fromStd(r.ggufType));
  if (dest_->text().isEmpty() || dest_->text() == lastAutoDest_) {
    lastAutoDest_ = defaultDestination();
    dest_->setText(lastAutoDest_);
  }
  schedulePlan();
}

void ExportDialog::schedulePlan() {
  const QString name = format_->currentData().toString();
  QString help;
  for (const auto& f : workflow::exportFormats())
    if (fromStd(f.name) == name) help = fromStd(f.description);
  const int ri = run_->currentIndex();
  if (ri >= 0 && ri < static_cast<int>(runs_.size()) && !runs_[static_cast<size_t>(ri)].limits.empty())
    help += QStringLiteral("\n") + fromStd(runs_[static_cast<size_t>(ri)].limits);
  formatHelp_->setText(help);
  const bool gptq = name == QLatin1String("gptq");
  gptqFormat_->setEnabled(gptq);
  allowPadding_->setEnabled(gptq);
  ggufType_->setEnabled(name == QLatin1String("gguf"));
  // scale-shift is one float32 file of its own, GGUF one file in its own types: no dtype, no shards.
  const bool folder = name != QLatin1String("scale-shift") && name != QLatin1String("gguf");
  dtype_->setEnabled(folder);
  shardMiB_->setEnabled(folder);
  ++generation_;
  planning_ = true;
  updateButtons();
  summary_->setText(tr("Planning…"));
  debounce_->start();
}

void ExportDialog::startPlan() {
  if (runs_.empty()) {
    planning_ = false;
    return;
  }
  if (watcher_->isRunning()) return;  // the finished handler starts the newest
  const workflow::ExportJobOptions o = options();
  watcher_->setProperty("generation", QVariant::fromValue<quint64>(generation_));
  watcher_->setFuture(QtConcurrent::run([o] {
    auto out = std::make_shared<PlanOutcome>();
    try {
      out->result = workflow::planExportJob(o);
    } catch (const std::exception& e) {
      out->error = QString::fromUtf8(e.what());
    }
    return out;
  }));
}

void ExportDialog::showPlan() {
  files_->clear();
  if (!planError_.isEmpty()) {
    summary_->setText(QStringLiteral("<span style='color:#c0392b'>%1</span>").arg(planError_.toHtmlEscaped()));
    updateButtons();
    return;
  }
  for (const auto& f : plan_->files) {
    auto* item = new QTreeWidgetItem(files_, {fromStd(f.name), sizeText(f.bytes)});
    item->setTextAlignment(1, Qt::AlignRight | Qt::AlignVCenter);
  }
  QString text = tr("%n file(s), <b>%1</b> into <code>%2</code>", "", static_cast<int>(plan_->files.size()))
                     .arg(sizeText(plan_->totalBytes), fromStd(plan_->dir).toHtmlEscaped());
  if (plan_->dirExists)
    text += tr("<br><span style='color:#c0392b'>The folder exists: tick Replace to overwrite it (the old one stays "
               "until the new one is complete).</span>");
  for (const auto& n : plan_->notes) text += QStringLiteral("<br><i>%1</i>").arg(fromStd(n).toHtmlEscaped());
  summary_->setText(text);
  updateButtons();
}

QString ExportDialog::exportBlocker() const {
  if (runs_.empty()) return tr("no exportable run");
  if (dest_->text().trimmed().isEmpty()) return tr("choose a destination folder");
  if (planning_) return tr("planning");
  if (!planError_.isEmpty()) return planError_;
  if (plan_->dirExists && !replace_->isChecked()) return tr("the destination exists");
  return QString();
}

void ExportDialog::updateButtons() {
  // An existing folder leaves Export enabled: pressing it asks whether to replace.
  const QString why = exportBlocker();
  exportButton_->setEnabled(why.isEmpty() || why == tr("the destination exists"));
  exportButton_->setToolTip(why);
}

void ExportDialog::accept() {
  const QString why = exportBlocker();
  if (why == tr("the destination exists")) {
    const auto answer = QMessageBox::question(
        this, tr("Replace folder?"),
        tr("%1 exists. Replace it? The old folder is removed only once the new export is complete.")
            .arg(fromStd(plan_->dir)),
        QMessageBox::Yes | QMessageBox::No, QMessageBox::No);
    if (answer != QMessageBox::Yes) return;
    replace_->setChecked(true);
  } else if (!why.isEmpty()) {
    return;
  }
  QDialog::accept();
}

}  // namespace qs::ui

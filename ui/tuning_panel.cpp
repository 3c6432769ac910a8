// TuningPanel: see tuning_panel.h.
#include "ui/tuning_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFormLayout>
#include <QFrame>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollArea>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>

#include "core/workflow/tuning_check.h"

namespace qs::ui {

using workflow::TuningControl;

namespace {
const char* const kPresetDir = ":/presets";
}

TuningPanel::TuningPanel(QWidget* parent)
    : QWidget(parent),
      presets_(new QComboBox(this)),
      yamlEdit_(new QPlainTextEdit(this)),
      errorLabel_(new QLabel(this)) {
  setObjectName(QStringLiteral("tuningPanel"));
  presets_->setObjectName(QStringLiteral("presetCombo"));
  presets_->addItem(tr("Load preset…"));
  for (const QString& p : presetNames()) presets_->addItem(p, p);
  yamlEdit_->setObjectName(QStringLiteral("tuningYaml"));
  QFont mono(QStringLiteral("monospace"));
  mono.setStyleHint(QFont::TypeWriter);
  yamlEdit_->setFont(mono);
  yamlEdit_->setLineWrapMode(QPlainTextEdit::NoWrap);
  errorLabel_->setObjectName(QStringLiteral("tuningError"));
  errorLabel_->setWordWrap(true);
  errorLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);

  // Controls, grouped as the table lists them, two groups a row, scrolling when the dock is low.
  auto* controlsBox = new QWidget(this);
  auto* cv = new QVBoxLayout(controlsBox);
  cv->setContentsMargins(0, 0, 0, 0);
  auto* top = new QHBoxLayout;
  top->addWidget(presets_, 1);
  cv->addLayout(top);
  auto* groups = new QWidget(controlsBox);
  auto* grid = new QGridLayout(groups);
  grid->setContentsMargins(0, 0, 0, 0);
  auto* scroll = new QScrollArea(controlsBox);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  scroll->setWidget(groups);
  cv->addWidget(scroll, 1);
  std::map<std::string, QFormLayout*> forms;
  for (const auto& c : workflow::tuningControls()) {
    if (!forms.count(c.group)) {
      auto* box = new QGroupBox(QString::fromStdString(c.group), groups);
      forms[c.group] = new QFormLayout(box);
      forms[c.group]->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
      const int n = static_cast<int>(forms.size()) - 1;
      grid->addWidget(box, n / 2, n % 2, Qt::AlignTop);
    }
    QWidget* w = makeControl(c);
    auto* label = new QLabel(QString::fromStdString(c.label), controlsBox);
    label->setToolTip(QString::fromStdString(c.key));
    forms[c.group]->addRow(label, w);
  }
  grid->setRowStretch(grid->rowCount(), 1);
  cv->addWidget(errorLabel_);

  auto* yamlBox = new QWidget(this);
  auto* yv = new QVBoxLayout(yamlBox);
  yv->setContentsMargins(0, 0, 0, 0);
  yv->addWidget(new QLabel(tr("<b>Resolved YAML</b> (editable)"), yamlBox));
  yv->addWidget(yamlEdit_, 1);
  auto* buttons = new QHBoxLayout;
  auto* apply = new QPushButton(tr("Apply YAML"), yamlBox);
  apply->setObjectName(QStringLiteral("applyYaml"));
  apply->setToolTip(tr("Read the edited YAML back into the controls (Ctrl+Return)"));
  apply->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Return));
  auto* saveQ = new QPushButton(tr("Save Config…"), yamlBox);
  saveQ->setToolTip(tr("Write the config as a file for qscope quantize --config"));
  buttons->addWidget(apply);
  buttons->addStretch();
  buttons->addWidget(saveQ);
  yv->addLayout(buttons);

  auto* split = new QSplitter(Qt::Horizontal, this);
  split->addWidget(controlsBox);
  split->addWidget(yamlBox);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(4, 4, 4, 4);
  v->addWidget(split);

  connect(apply, &QPushButton::clicked, this, [this] { setYaml(yamlEdit_->toPlainText()); });
  connect(saveQ, &QPushButton::clicked, this, [this] { saveSection(QStringLiteral("quantize"), tr("Save Quantize Config")); });
  connect(presets_, qOverload<int>(&QComboBox::activated), this, [this](int i) {
    if (i > 0) loadPreset(presets_->itemData(i).toString());
    presets_->setCurrentIndex(0);
  });

  defaults_.setYaml(workflow::defaultTuningYaml());
  doc_ = defaults_;
  refreshControls();
  recheck(true);
}

QStringList TuningPanel::presetNames() const {
  return QDir(QString::fromLatin1(kPresetDir)).entryList({QStringLiteral("*.yaml")}, QDir::Files, QDir::Name);
}

QWidget* TuningPanel::makeControl(const TuningControl& c) {
  QWidget* w = nullptr;
  switch (c.type) {
    case TuningControl::Type::Bool: {
      auto* b = new QCheckBox(this);
      connect(b, &QCheckBox::toggled, this, [this, &c](bool on) { onControlEdited(c, on ? "true" : "false"); });
      w = b;
      break;
    }
    case TuningControl::Type::Int: {
      auto* s = new QSpinBox(this);
      s->setRange(static_cast<int>(c.min), static_cast<int>(c.max));
      s->setKeyboardTracking(false);
      connect(s, qOverload<int>(&QSpinBox::valueChanged), this, [this, &c](int v) { onControlEdited(c, QString::number(v)); });
      w = s;
      break;
    }
    case TuningControl::Type::Double:
    case TuningControl::Type::Percent: {
      auto* s = new QDoubleSpinBox(this);
      s->setRange(c.min, c.max);
      s->setDecimals(3);
      s->setSingleStep(c.type == TuningControl::Type::Percent ? 0.5 : 0.01);
      if (c.type == TuningControl::Type::Percent) s->setSuffix(QStringLiteral(" %"));
      s->setKeyboardTracking(false);
      connect(s, qOverload<double>(&QDoubleSpinBox::valueChanged), this,
              [this, &c](double v) { onControlEdited(c, QString::number(v, 'g', 10)); });
      w = s;
      break;
    }
    case TuningControl::Type::Choice: {
      auto* b = new QComboBox(this);
      for (size_t i = 0; i < c.choices.size(); ++i)
        b->addItem(QString::fromStdString(c.choiceLabels[i]), QString::fromStdString(c.choices[i]));
      connect(b, qOverload<int>(&QComboBox::currentIndexChanged), this,
              [this, &c, b](int i) { if (i >= 0) onControlEdited(c, b->itemData(i).toString()); });
      w = b;
      break;
    }
  }
  w->setObjectName(QString::fromStdString(c.key));
  w->setToolTip(QStringLiteral("%1\n(%2)").arg(QString::fromStdString(c.help), QString::fromStdString(c.key)));
  controls_[c.key] = w;
  return w;
}

QWidget* TuningPanel::control(const QString& key) const {
  auto it = controls_.find(key.toStdString());
  return it == controls_.end() ? nullptr : it->second;
}

void TuningPanel::onControlEdited(const TuningControl& c, const QString& value) {
  if (updating_) return;
  doc_.setControlValue(c, value.toStdString());
  recheck(true);
}

void TuningPanel::refreshControls() {
  updating_ = true;
  for (const auto& c : workflow::tuningControls()) {
    QWidget* w = controls_[c.key];
    QString v = QString::fromStdString(doc_.controlValue(c));
    // A control of an absent section is off; an absent key shows the core's default.
    const std::string section = c.key.substr(0, c.key.find('.'));
    w->setEnabled(!doc_.section(section).empty());
    if (v.isEmpty()) v = QString::fromStdString(defaults_.controlValue(c));
    if (auto* b = qobject_cast<QCheckBox*>(w)) b->setChecked(v.toLower() == "true");
    else if (auto* s = qobject_cast<QSpinBox*>(w)) s->setValue(v.toInt());
    else if (auto* d = qobject_cast<QDoubleSpinBox*>(w)) d->setValue(v.toDouble());
    else if (auto* cb = qobject_cast<QComboBox*>(w)) {
      int i = cb->findData(v);
      if (i < 0)  // OS+ spellings the core accepts but the combo does not list ("minmax")
        for (int k = 0; k < cb->count(); ++k)
          if (cb->itemData(k).toString().compare(v, Qt::CaseInsensitive) == 0) i = k;
      if (i < 0) {
        cb->addItem(v, v);
        i = cb->count() - 1;
      }
      cb->setCurrentIndex(i);
    }
  }
  updating_ = false;
}

void TuningPanel::recheck(bool rewriteText) {
  const workflow::TuningCheck check = workflow::checkTuning(doc_.yaml());
  error_ = QString::fromStdString(check.error);
  label_ = QString::fromStdString(check.label);
  if (error_.isEmpty() && !check.resolvedYaml.empty() && check.resolvedYaml != doc_.yaml()) {
    doc_.setYaml(check.resolvedYaml);
    refreshControls();
    rewriteText = true;  // show what will run; an invalid text is left as typed, to be fixed
  }
  if (error_.isEmpty()) {
    errorLabel_->setText(tr("✓ valid — “Quantize & Evaluate” uses the quantize section"));
    errorLabel_->setStyleSheet(QStringLiteral("color: #2e8b57;"));
  } else {
    errorLabel_->setText(error_);
    errorLabel_->setStyleSheet(QStringLiteral("color: #d03030; font-weight: 600;"));
  }
  if (rewriteText) {
    yamlEdit_->setPlainText(QString::fromStdString(doc_.yaml()));
  }
  Q_EMIT configChanged();
}

QString TuningPanel::setYaml(const QString& text) {
  const std::string err = doc_.setYaml(text.toStdString());
  if (!err.empty()) {
    error_ = QString::fromStdString(err);
    errorLabel_->setText(error_);
    errorLabel_->setStyleSheet(QStringLiteral("color: #d03030; font-weight: 600;"));
    return error_;
  }
  refreshControls();
  recheck(false);
  return QString();
}

QString TuningPanel::loadPreset(const QString& name) {
  QFile f(QString::fromLatin1(kPresetDir) + QLatin1Char('/') + name);
  if (!f.open(QIODevice::ReadOnly)) return tr("%1: preset not found").arg(name);
  try {
    doc_.setYaml(workflow::applyTuningPreset(doc_.yaml(), f.readAll().toStdString(), name.toStdString()));
  } catch (const std::exception& e) {
    const QString err = QString::fromUtf8(e.what());
    errorLabel_->setText(err);
    return err;
  }
  refreshControls();
  recheck(true);
  return QString();
}

void TuningPanel::saveSection(const QString& section, const QString& title) {
  const QString text = QString::fromStdString(doc_.section(section.toStdString()));
  if (text.isEmpty()) return;
  const QString file = QFileDialog::getSaveFileName(this, title, QDir::homePath() + "/" + section + ".yaml",
                                                    tr("YAML (*.yaml *.yml)"));
  if (file.isEmpty()) return;
  QSaveFile out(file);  // temp + rename: a failed write leaves the old file
  if (!out.open(QIODevice::WriteOnly) || out.write(text.toUtf8()) < 0 || !out.commit())
    errorLabel_->setText(tr("%1: could not be written (%2)").arg(file, out.errorString()));
}

}  // namespace qs::ui

// TuningPanel: see tuning_panel.h.
#include "ui/tuning_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFormLayout>
#include <QFutureWatcher>
#include <QFrame>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollArea>
#include <QScrollBar>
#include <QSpinBox>
#include <QSplitter>
#include <QTabWidget>
#include <QTimer>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include "core/workflow/preflight.h"
#include "core/workflow/tuning_check.h"
#include "ui/plots/preview_plot.h"
#include "ui/plots/plot_style.h"
#include "ui/preview_runner.h"
#include "ui/qcustomplot_include.h"

namespace qs::ui {

using workflow::TuningControl;

namespace {
const char* const kPresetDir = ":/presets";
}

TuningPanel::TuningPanel(QWidget* parent)
    : QWidget(parent),
      presets_(new QComboBox(this)),
      yamlEdit_(new QPlainTextEdit(this)),
      errorLabel_(new QLabel(this)),
      runner_(new PreviewRunner(this)),
      previewTimer_(new QTimer(this)) {
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
  // Both group columns stay readable; the splitter gives the rest to the YAML / preview tabs.
  scroll->setMinimumWidth(groups->minimumSizeHint().width() + scroll->verticalScrollBar()->sizeHint().width());
  cv->addWidget(errorLabel_);
  resourceLabel_ = new QLabel(tr("Resources: open a project to estimate the job's memory."), this);
  resourceLabel_->setObjectName(QStringLiteral("tuningResources"));
  resourceLabel_->setWordWrap(true);
  resourceLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  cv->addWidget(resourceLabel_);

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

  rightTabs_ = new QTabWidget(this);
  rightTabs_->setObjectName(QStringLiteral("tuningTabs"));
  rightTabs_->addTab(yamlBox, tr("Resolved YAML"));
  rightTabs_->addTab(makePreviewTab(), tr("Live Preview"));
  auto* split = new QSplitter(Qt::Horizontal, this);
  split->addWidget(controlsBox);
  split->addWidget(rightTabs_);
  split->setStretchFactor(0, 0);  // the controls keep their width; the YAML / preview get the rest
  split->setStretchFactor(1, 1);
  split->setSizes({controlsBox->minimumSizeHint().width(), 10000});
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

  // Typing in a spin box fires a change per keystroke: wait for a pause, then ask (the runner
  // cancels whatever is still running).
  previewTimer_->setSingleShot(true);
  previewTimer_->setInterval(120);
  connect(previewTimer_, &QTimer::timeout, this, &TuningPanel::requestPreview);
  connect(this, &TuningPanel::configChanged, this, &TuningPanel::schedulePreview);
  resourceTimer_ = new QTimer(this);
  resourceTimer_->setSingleShot(true);
  resourceTimer_->setInterval(300);
  connect(resourceTimer_, &QTimer::timeout, this, &TuningPanel::requestResources);
  connect(this, &TuningPanel::configChanged, this, [this] {
    if (!resourceProject_.isEmpty()) resourceTimer_->start();
  });
  connect(runner_, &PreviewRunner::ready, this, &TuningPanel::onPreview);
  connect(runner_, &PreviewRunner::failed, this, [this](const QString& m) {
    previewInfo_->setText(m);
    previewInfo_->setStyleSheet(QStringLiteral("color: #d03030;"));
    Q_EMIT previewFailed(m);
  });
}

QWidget* TuningPanel::makePreviewTab() {
  auto* tab = new QWidget(this);
  previewLayer_ = new QSpinBox(tab);
  previewLayer_->setObjectName(QStringLiteral("previewLayer"));
  previewLayer_->setRange(0, 4096);
  previewLayer_->setPrefix(tr("layer "));
  previewPair_ = new QComboBox(tab);
  previewPair_->setObjectName(QStringLiteral("previewPair"));
  previewPair_->addItems({tr("pair 1 (attention input)"), tr("pair 2 (MLP input)"), tr("pair 3 (value → output)")});
  previewPair_->setToolTip(tr("The block's migration pairs, in the model's order"));
  previewPair_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  previewPair_->setMinimumContentsLength(10);
  previewShift_ = new QCheckBox(tr("shift"), tab);
  previewShift_->setChecked(true);
  previewShift_->setToolTip(tr("OS+ channel shift z = (max + min) / 2 (quantize.osplus_shift)"));
  previewScale_ = new QCheckBox(tr("scale"), tab);
  previewScale_->setChecked(true);
  previewScale_->setToolTip(tr("OS+ channel scale s = max(1, r / t) (quantize.osplus_scale)"));
  previewThreshold_ = new QDoubleSpinBox(tab);
  previewThreshold_->setObjectName(QStringLiteral("previewThreshold"));
  previewThreshold_->setRange(0, 1e6);
  previewThreshold_->setDecimals(3);
  previewThreshold_->setSpecialValueText(tr("t: searched"));
  previewThreshold_->setPrefix(tr("t = "));
  previewThreshold_->setToolTip(
      tr("Clipping threshold override; 0 = searched over OS+ search steps candidates (quantize.osplus_threshold)"));
  previewPlot_ = new QCustomPlot(tab);
  previewPlot_->setObjectName(QStringLiteral("previewPlot"));
  previewPlot_->setMinimumSize(240, 200);
  previewInfo_ = new QLabel(tr("Open a project to preview a layer under these settings."), tab);
  previewInfo_->setObjectName(QStringLiteral("previewInfo"));
  previewInfo_->setWordWrap(true);
  previewInfo_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* row = new QHBoxLayout;
  row->addWidget(previewLayer_);
  row->addWidget(previewPair_, 1);
  auto* row2 = new QHBoxLayout;
  row2->addWidget(new QLabel(tr("OS+"), tab));
  row2->addWidget(previewShift_);
  row2->addWidget(previewScale_);
  row2->addWidget(previewThreshold_);
  row2->addStretch();
  auto* v = new QVBoxLayout(tab);
  v->setContentsMargins(0, 4, 0, 0);
  v->addLayout(row);
  v->addLayout(row2);
  v->addWidget(previewPlot_, 1);
  v->addWidget(previewInfo_);
  connect(previewLayer_, qOverload<int>(&QSpinBox::valueChanged), this, &TuningPanel::schedulePreview);
  connect(previewPair_, qOverload<int>(&QComboBox::activated), this, [this] { previewSite_.clear(); });
  connect(previewPair_, qOverload<int>(&QComboBox::currentIndexChanged), this, &TuningPanel::schedulePreview);
  // The OS+ preview controls are the config's keys: a change here is what Quantize & Evaluate runs.
  connect(previewShift_, &QCheckBox::toggled, this, [this](bool on) { setOsPlusKey("quantize.osplus_shift", on ? "true" : "false"); });
  connect(previewScale_, &QCheckBox::toggled, this, [this](bool on) { setOsPlusKey("quantize.osplus_scale", on ? "true" : "false"); });
  connect(previewThreshold_, qOverload<double>(&QDoubleSpinBox::valueChanged), this,
          [this](double t) { setOsPlusKey("quantize.osplus_threshold", QString::number(t, 'g', 10)); });
  return tab;
}

void TuningPanel::setPreviewSource(const QString& modelPath, const QString& dataset, const QString& dataDir) {
  previewModel_ = modelPath;
  previewDataset_ = dataset;
  previewDataDir_ = dataDir;
  schedulePreview();
}

void TuningPanel::setResourceProject(const QString& projectDir) {
  resourceProject_ = projectDir;
  if (projectDir.isEmpty()) {
    resourceLabel_->setText(tr("Resources: open a project to estimate the job's memory."));
    return;
  }
  resourceTimer_->start();
}

void TuningPanel::requestResources() {
  if (resourceProject_.isEmpty()) return;
  if (!error_.isEmpty()) {
    resourceLabel_->setText(tr("Resources: fix the config to estimate."));
    return;
  }
  workflow::QuantizeJobOptions o;
  o.projectDir = resourceProject_.toStdString();
  o.configYaml = doc_.section("quantize");
  o.configName = "tuning panel";
  const quint64 generation = ++resourceGeneration_;
  // Opening a model's headers takes milliseconds, but a slow disk must not freeze the window.
  auto* watcher = new QFutureWatcher<std::pair<QString, QString>>(this);
  connect(watcher, &QFutureWatcher<std::pair<QString, QString>>::finished, this, [this, watcher, generation] {
    const auto [text, detail] = watcher->result();
    watcher->deleteLater();
    if (generation != resourceGeneration_) return;  // a newer config is being estimated
    resourceLabel_->setText(text);
    resourceLabel_->setToolTip(detail);
    ++resourceEstimates_;
  });
  watcher->setFuture(QtConcurrent::run([o]() -> std::pair<QString, QString> {
    try {
      const workflow::QuantizePreflight p = workflow::preflightQuantize(o, /*probe=*/false);
      const QString line = QObject::tr("Resources: %1").arg(QString::fromStdString(workflow::preflightSummary(p)));
      return {p.fits ? line : QStringLiteral("<span style=\"color:#d03030\">%1</span>").arg(line.toHtmlEscaped()),
              QString::fromStdString(workflow::describePreflight(p))};
    } catch (const std::exception& e) {
      return {QObject::tr("Resources: %1").arg(QString::fromUtf8(e.what())), QString()};
    }
  }));
}

void TuningPanel::setPreviewLayer(int layer) {
  previewLayer_->setValue(layer);
  schedulePreview();  // also when the value did not change: the caller wants a fresh result
}
void TuningPanel::setPreviewPair(int index) {
  previewSite_.clear();
  previewPair_->setCurrentIndex(index);
  schedulePreview();
}

void TuningPanel::setPreviewSite(int layer, const QString& site) {
  previewSite_ = site;
  if (previewLayer_->value() != layer) previewLayer_->setValue(layer);  // schedules
  else schedulePreview();
}
void TuningPanel::setOsPlusKey(const std::string& key, const QString& value) {
  if (updating_) return;
  const workflow::TuningControl* c = workflow::findTuningControl(key);
  if (!c) return;
  onControlEdited(*c, value);
  refreshControls();
  schedulePreview();
}

void TuningPanel::setPreviewShift(bool on) { previewShift_->setChecked(on); }
void TuningPanel::setPreviewScale(bool on) { previewScale_->setChecked(on); }
void TuningPanel::setPreviewThreshold(double t) { previewThreshold_->setValue(t); }
void TuningPanel::showPreview() { rightTabs_->setCurrentIndex(1); }

void TuningPanel::setDark(bool dark) {
  dark_ = dark;
  previewPlot_->setBackground(plot::plotPalette(dark).background);
  if (!preview_.minBefore.empty()) onPreview(preview_);
}

void TuningPanel::schedulePreview() {
  if (previewModel_.isEmpty() || !previewTimer_) return;
  previewTimer_->start();
}

void TuningPanel::requestPreview() {
  if (previewModel_.isEmpty()) return;
  if (!error_.isEmpty()) {
    previewInfo_->setText(tr("Fix the config to preview: %1").arg(error_));
    return;
  }
  workflow::LayerPreviewOptions o;
  o.modelPath = previewModel_.toStdString();
  o.dataset = previewDataset_.toStdString();
  o.dataDir = previewDataDir_.toStdString();
  o.layer = previewLayer_->value();
  o.pairIndex = previewPair_->currentIndex();
  o.site = previewSite_.toStdString();
  o.shift = osPlusValue("quantize.osplus_shift").toLower() != "false";
  o.scale = osPlusValue("quantize.osplus_scale").toLower() != "false";
  o.threshold = osPlusValue("quantize.osplus_threshold").toDouble();
  o.searchSteps = std::max(1, QString::fromStdString(doc_.get("quantize.osplus_search_steps")).toInt());
  if (!doc_.get("quantize.osplus_search").empty()) o.search = doc_.get("quantize.osplus_search");
  const qint64 tokens = QString::fromStdString(doc_.get("quantize.osplus_search_tokens")).toLongLong();
  if (tokens > 0) o.tokens = tokens;
  o.configYaml = doc_.section("quantize");
  previewInfo_->setStyleSheet(QString());
  if (preview_.minBefore.empty()) previewInfo_->setText(tr("Capturing the layer inputs…"));
  runner_->request(o);
}

void TuningPanel::onPreview(const workflow::LayerPreviewResult& r) {
  preview_ = r;
  ++previewsShown_;
  plot::renderPreviewRanges(previewPlot_, r, dark_);
  previewPlot_->replot();
  QStringList consumers;
  for (const auto& c : r.consumers) consumers << QString::fromStdString(c).section('.', -1);
  if (previewSite_.isEmpty())
    previewPair_->setItemText(previewPair_->currentIndex(),
                            QStringLiteral("%1 → %2").arg(QString::fromStdString(r.pair), consumers.join(QStringLiteral(", "))));
  const double change = r.errorBefore > 0 ? (r.errorAfter - r.errorBefore) / r.errorBefore : 0.0;
  previewInfo_->setText(tr("quantized-output error %1 → <b>%2</b> (%3%4%) · max |x| %5 → %6%7 · %8 tokens · %9 ms%10")
                            .arg(plot::formatValue(r.errorBefore), plot::formatValue(r.errorAfter))
                            .arg(change >= 0 ? "+" : "")
                            .arg(change * 100, 0, 'f', 1)
                            .arg(plot::formatValue(r.maxAbsBefore), plot::formatValue(r.maxAbsAfter))
                            .arg(r.threshold > 0 ? tr(" · t = %1").arg(plot::formatValue(r.threshold)) : QString())
                            .arg(r.tokens)
                            .arg(qRound(r.seconds * 1000))
                            .arg(r.recaptured ? tr(" (inputs captured)") : QString()));
  Q_EMIT previewUpdated();
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
      if (c.key == "quantize.osplus_threshold") s->setSpecialValueText(tr("searched"));
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

QString TuningPanel::osPlusValue(const std::string& key) const {
  const workflow::TuningControl* c = workflow::findTuningControl(key);
  std::string v = c ? doc_.controlValue(*c) : std::string();
  if (v.empty() && c) v = defaults_.controlValue(*c);
  return QString::fromStdString(v);
}

void TuningPanel::refreshControls() {
  updating_ = true;
  if (previewShift_) {
    previewShift_->setChecked(osPlusValue("quantize.osplus_shift").toLower() != "false");
    previewScale_->setChecked(osPlusValue("quantize.osplus_scale").toLower() != "false");
    previewThreshold_->setValue(osPlusValue("quantize.osplus_threshold").toDouble());
  }
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

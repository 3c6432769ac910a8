// The "Tuning" dock: the controls of a quantize config — weights (method, bits, group size,
// act-order, iterations, outlier %, ...), activations (bits, granularity, observer), outlier
// migration (OS+ with its search, SmoothQuant) and calibration — each bound to one YAML key of a
// TuningDocument (core/workflow/tuning_document.h),
// next to the document itself as editable YAML. A control edits its key; "Apply YAML" reads the
// text back into the controls; presets (resources/presets) replace the sections they hold. Every
// change is checked by the core's own parsers (tuning_check.h) and an invalid value shows the
// core's message under the controls. A valid document is shown resolved: every quantize key with
// its value, absent ones filled with the core's defaults. "Quantize & Evaluate" uses quantizeSection().
#pragma once
#include <QWidget>

#include <map>
#include <string>

#include "core/workflow/tuning_document.h"

class QComboBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;

namespace qs::ui {

class TuningPanel : public QWidget {
  Q_OBJECT

 public:
  explicit TuningPanel(QWidget* parent = nullptr);

  // Replaces the document (as "Apply YAML" does); "" or the parse error.
  QString setYaml(const QString& text);
  QString yaml() const { return QString::fromStdString(doc_.yaml()); }
  // The `quantize:` section for the quantize job ("" when the document has none).
  QString quantizeSection() const { return QString::fromStdString(doc_.section("quantize")); }
  // The core's message for the current document, "" when valid.
  QString error() const { return error_; }
  // The config's short label ("W4A6 gptq w4 g32 +OS+"), "" while invalid.
  QString configLabel() const { return label_; }
  // Loads a preset by file name ("gptq-w4g128.yaml") from the bundled presets; "" or the error.
  QString loadPreset(const QString& name);
  QStringList presetNames() const;

  // The widget bound to a key (QCheckBox, QSpinBox, QDoubleSpinBox or QComboBox).
  QWidget* control(const QString& key) const;
  QPlainTextEdit* yamlEdit() const { return yamlEdit_; }
  QLabel* errorLabel() const { return errorLabel_; }

 Q_SIGNALS:
  void configChanged();

 private:
  QWidget* makeControl(const workflow::TuningControl& c);
  void onControlEdited(const workflow::TuningControl& c, const QString& value);
  void refreshControls();
  void recheck(bool rewriteText);
  void saveSection(const QString& section, const QString& title);

  workflow::TuningDocument doc_;
  workflow::TuningDocument defaults_;  // what an absent key means (core defaults)
  std::map<std::string, QWidget*> controls_;
  QComboBox* presets_;
  QPlainTextEdit* yamlEdit_;
  QLabel* errorLabel_;
  QString error_;
  QString label_;
  bool updating_ = false;
};

}  // namespace qs::ui

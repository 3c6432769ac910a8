// The "Tuning" dock: the controls of a quantize config — weights (method, bits, group size,
// act-order, iterations, outlier %, ...), activations (bits, granularity, observer), outlier
// migration (OS+ with its search, SmoothQuant) and calibration — each bound to one YAML key of a
// TuningDocument (core/workflow/tuning_document.h),
// next to the document itself as editable YAML. A control edits its key; "Apply YAML" reads the
// text back into the controls; presets (resources/presets) replace the sections they hold. Every
// change is checked by the core's own parsers (tuning_check.h) and an invalid value shows the
// core's message under the controls. A valid document is shown resolved: every quantize key with
// its value, absent ones filled with the core's defaults.
// The "Live preview" tab recomputes, in the background, one block's migration pair under the
// current settings: channel ranges before/after OS+ shifting/scaling and the quantized-output
// error before/after (core/workflow/layer_preview.h); every change cancels the previous request. "Quantize & Evaluate" uses quantizeSection().
#pragma once
#include <QWidget>

#include <map>
#include <string>

#include "core/workflow/layer_preview.h"
#include "core/workflow/tuning_document.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QTimer;

namespace qs::ui {

class PreviewRunner;

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

  // Live preview: the model and calibration text it runs on ("" model = no preview).
  void setPreviewSource(const QString& modelPath, const QString& dataset, const QString& dataDir);
  // The project whose quantize job the "Resources" line estimates (memory per stage, peak against
  // the budget, whole model or block by block) as the config changes; "" = none.
  void setResourceProject(const QString& projectDir);
  QLabel* resourceLabel() const { return resourceLabel_; }
  int resourceEstimates() const { return resourceEstimates_; }
  // Preview controls (the widgets do the same): block, pair of the block, OS+ shift/scale, and
  // a fixed threshold (0 = searched as migrate: osplus does). Shift, scale and threshold are the
  // config's quantize.osplus_shift / osplus_scale / osplus_threshold keys, so what the preview
  // shows is what Quantize & Evaluate runs.
  void setPreviewLayer(int layer);
  void setPreviewPair(int index);
  // Previews the pair whose consumers include `site` (the explorer's "after OS+"); a manual pair
  // choice clears it.
  void setPreviewSite(int layer, const QString& site);
  void setPreviewShift(bool on);
  void setPreviewScale(bool on);
  void setPreviewThreshold(double t);
  void showPreview();
  void setDark(bool dark);
  const workflow::LayerPreviewResult& previewResult() const { return preview_; }
  int previewsShown() const { return previewsShown_; }
  PreviewRunner* previewRunner() const { return runner_; }
  QCustomPlot* previewPlot() const { return previewPlot_; }
  QLabel* previewInfo() const { return previewInfo_; }

 Q_SIGNALS:
  void configChanged();
  void previewUpdated();
  void previewFailed(const QString& message);

 private:
  QWidget* makeControl(const workflow::TuningControl& c);
  QWidget* makePreviewTab();
  void schedulePreview();
  void requestPreview();
  void onPreview(const workflow::LayerPreviewResult& r);
  void onControlEdited(const workflow::TuningControl& c, const QString& value);
  void refreshControls();
  // The OS+ preview widgets edit these keys of the document (osplus_shift/scale/threshold).
  void setOsPlusKey(const std::string& key, const QString& value);
  QString osPlusValue(const std::string& key) const;  // the document's value, else the default
  void recheck(bool rewriteText);
  void saveSection(const QString& section, const QString& title);
  void requestResources();

  workflow::TuningDocument doc_;
  workflow::TuningDocument defaults_;  // what an absent key means (core defaults)
  std::map<std::string, QWidget*> controls_;
  QComboBox* presets_;
  QPlainTextEdit* yamlEdit_;
  QLabel* errorLabel_;
  QString error_;
  QString label_;
  // Live preview.
  PreviewRunner* runner_;
  QTimer* previewTimer_;
  QTabWidget* rightTabs_ = nullptr;
  QSpinBox* previewLayer_ = nullptr;
  QComboBox* previewPair_ = nullptr;
  QCheckBox* previewShift_ = nullptr;
  QCheckBox* previewScale_ = nullptr;
  QDoubleSpinBox* previewThreshold_ = nullptr;
  QCustomPlot* previewPlot_ = nullptr;
  QLabel* previewInfo_ = nullptr;
  QString previewModel_, previewDataset_, previewDataDir_, previewSite_;
  workflow::LayerPreviewResult preview_;
  int previewsShown_ = 0;
  bool dark_ = false;
  bool updating_ = false;
  // Resources line: pre-flight (memory only) on a worker thread after a pause in editing.
  QLabel* resourceLabel_ = nullptr;
  QTimer* resourceTimer_ = nullptr;
  QString resourceProject_;
  quint64 resourceGeneration_ = 0;
  int resourceEstimates_ = 0;
};

}  // namespace qs::ui

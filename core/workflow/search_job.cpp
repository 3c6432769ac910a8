#include "core/workflow/search_job.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <optional>
#include <set>

#include "core/algo/precision_eval.h"
#include "core/eval/datasets.h"
#include "core/eval/perplexity.h"
#include "core/eval/task_metrics.h"
#include "core/eval/tasks.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/model.h"
#include "core/quant/format_yaml.h"
#include "core/runs/fingerprint.h"
#include "core/runs/project.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/workflow/quantize_inputs.h"
#include "core/workflow/search_run.h"

namespace qs::workflow {
namespace stdfs = std::filesystem;

SearchRun runSearchFull(const SearchJobOptions& o, jobs::Progress& progress,
                        const std::function<void(const std::string&)>& note) {
  auto say = [&](const std::string& line) {
    if (note) note(line);
  };
  std::string dtypeName;
  const model::LoadOptions load = loadOptions(o.device, o.dtype, dtypeName);
  auto project = runs::Project::open(o.projectDir);
  if (!o.bundleDir.empty()) {
    if (o.trialFile.empty()) throw Error("--bundle is for one trial (--trial FILE)");
    project.redirectStore(o.bundleDir);
  }
  SearchRun out;
  out.projectDir = project.dir();
  algo::SearchSpace space = algo::loadSearchSpace(o.spaceFile);
  if (o.maxBits >= 0) space.constraints.maxBits = o.maxBits;
  if (o.maxPpl >= 0) space.constraints.maxPpl = o.maxPpl;
  if (o.minPpl >= 0) space.constraints.minPpl = o.minPpl;
  if (o.minAcc >= 0) space.constraints.minAcc = o.minAcc;
  if (o.tasksLimit >= 0) space.eval.tasksLimit = o.tasksLimit;
  if (!o.dataset.empty()) space.eval.dataset = o.dataset;
  if (o.seqlen > 0) space.eval.seqlen = o.seqlen;
  if (o.limitWindows >= 0) space.eval.limitWindows = o.limitWindows;
  algo::SearchOptions& options = out.options;
  options.trials = o.trials;
  options.seed = o.seed;
  options.population = o.population;
  options.algo = algo::parseSearchAlgo(o.algo);
  options.objectives = algo::parseObjectives(o.objectives);
  options.constraints = space.constraints;
  const std::string accTask = algo::accuracyTask(options.objectives);
  if (space.constraints.minAcc > 0 && accTask.empty())
    throw Error(std::string(o.minAcc >= 0 ? "--min-acc" : o.spaceFile + ": key 'constraints.min_acc'") +
                ": needs an accuracy objective (e.g. --objectives acc:piqa,bits)");
  const std::string dataDir = o.dataDir.empty() ? project.dataDir() : o.dataDir;
  std::optional<eval::Task> task;  // the accuracy objective's examples, loaded before the model
  if (!accTask.empty()) {
    // --task-dir, else <data dir>/tasks when the data folder has one, else the search path.
    std::string taskDir = o.taskDir;
    if (taskDir.empty() && !dataDir.empty() && fs::isDirectory(fs::join(dataDir, "tasks"))) taskDir = fs::join(dataDir, "tasks");
    task = eval::loadTask({accTask, ""}, eval::TaskLoadOptions().withTaskDir(taskDir).withLimit(space.eval.tasksLimit));
  }

  const std::string modelPath = project.modelPath();
  const auto text = eval::loadDataset(space.eval.dataset, dataDir);
  auto tokenizer = io::loadTokenizer(modelPath);
  const std::vector<int32_t> tokens = tokenizer->encode(text.text, true);
  auto model = model::openModel(modelPath, load);
  model->setExecOptions(o.exec);
  std::vector<std::string> siteNames;
  for (const auto& s : model->sites()) siteNames.push_back(s.name);
  const algo::SearchSpace::Resolved resolved = space.resolve(siteNames, o.spaceFile);  // unmatched entries: an error now

  eval::PerplexityOptions ppl;
  ppl.seqlen = space.eval.seqlen;
  ppl.batchSize = space.eval.batchSize;
  ppl.limitWindows = space.eval.limitWindows;

  algo::SearchRunInfo& info = out.info;
  info.modelPath = modelPath;
  info.modelFingerprint = runs::fingerprintModel(modelPath);
  info.dataset = text.name;
  info.algo = algo::searchAlgoName(options.algo);
  info.seed = options.seed;
  info.toolVersion = o.toolVersion;
  info.device = o.device;
  info.evalYaml = "eval:\n  dataset: \"" + text.name + "\"\n  dataset_tokens: " + std::to_string(tokens.size()) +
                  "\n  seqlen: " + std::to_string(ppl.seqlen) + "\n  limit_windows: " + std::to_string(ppl.limitWindows) +
                  "\n  batch_size: " + std::to_string(ppl.batchSize) + "\n  device: " + o.device +
                  "\n  dtype: " + o.dtype + "\n";
  info.accTask = accTask;
  if (task) {
    // The examples scored: the task, its file's fingerprint and the limit (a trial key changes with any of them).
    info.evalYaml += "  tasks: \"" + accTask + "\"\n  task_file: \"" + task->path + "\"\n  task_file_hash: \"" +
                     algo::textKey(fs::readText(task->path)) + "\"\n  limit: " + std::to_string(space.eval.tasksLimit) +
                     "\n  task_docs: " + std::to_string(task->docs.size()) + "\n";
  }
  // What a trial's number depends on besides its config: model, eval data and settings.
  const std::string identity = info.modelFingerprint + "\n" + info.evalYaml;
  std::string objectives;
  for (const auto& x : options.objectives) objectives += x + ",";
  const std::string searchKey = algo::textKey(identity + space.toYaml() + info.algo + std::to_string(options.seed) +
                                              std::to_string(options.population) + objectives);
  info.searchId = "s-" + searchKey.substr(searchKey.size() - 12);
  out.runsPath = project.runsPath();

  algo::PrecisionEmulator emulator(*model);
  auto evaluate = [&](const quant::LayerPrecision& lp, jobs::Progress& p) {
    jobs::SubProgress formats(p, 0.0, 0.1);
    emulator.apply(lp, formats);
    jobs::SubProgress scoring(p, 0.1, task ? 0.4 : 1.0);
    const auto r = eval::evaluatePerplexity(*model, tokens, ppl, scoring);
    algo::TrialEval e{r.perplexity, r.protocol + " seqlen=" + std::to_string(r.seqlen), r.windows};
    if (task) {
      jobs::SubProgress taskProgress(p, 0.4, 1.0);
      const auto tr = eval::evaluateTask(*model, *tokenizer, *task, eval::LoglikelihoodOptions(), taskProgress);
      const auto* m = tr.metric("acc");
      if (!m) throw Error("--objectives: task '" + accTask + "' reports no acc metric");
      e.acc = m->value;
      e.accStderr = m->stdError;
      e.accN = tr.n;
      e.accProtocol = eval::taskProtocol(tr.task);
    }
    return e;
  };

  // A Slurm task: the one trial of the file, stored in the bundle.
  if (!o.trialFile.empty()) {
    const auto want = algo::parseTrialFile(o.trialFile);
    const quant::LayerPrecision lp = space.decode(resolved, want.choice);
    const std::string key = algo::textKey(identity + "\n" + quant::precisionToYaml(lp));
    if (key != want.key)
      throw Error(o.trialFile + ": this node sees another model, eval text or setting than the coordinator (trial key " +
                  key + ", expected " + want.key + "); use the same files and options on every node");
    const algo::PrecisionSummary summary = algo::summarizePrecision(model->sites(), lp);
    algo::StoreTrialBackend backend(project.runsPath(), info, identity, evaluate);
    algo::TrialRequest req{want.index, want.choice, want.key, &lp, &summary};
    const algo::StoredTrial t = backend.evaluate(req, progress);
    out.trialIndex = want.index;
    out.trialPpl = t.ppl;
    out.trialRunId = t.runId;
    return out;
  }

  if (o.cluster.backend == "slurm") {
    ClusterOptions cluster = o.cluster;
    const std::string projectAbs = stdfs::absolute(project.dir()).lexically_normal().string();
    std::vector<std::string> args = {"search", projectAbs, "--space", stdfs::absolute(o.spaceFile).string(),
                                     "--trials", std::to_string(o.trials), "--objectives", o.objectives,
                                     "--algo", o.algo, "--seed", std::to_string(o.seed), "--population",
                                     std::to_string(o.population), "--no-progress"};
    if (!o.dataset.empty()) args.insert(args.end(), {"--dataset", o.dataset});
    if (o.seqlen > 0) args.insert(args.end(), {"--seqlen", std::to_string(o.seqlen)});
    if (o.limitWindows >= 0) args.insert(args.end(), {"--limit-windows", std::to_string(o.limitWindows)});
    if (o.tasksLimit >= 0) args.insert(args.end(), {"--tasks-limit", std::to_string(o.tasksLimit)});
    if (!o.taskDir.empty()) args.insert(args.end(), {"--task-dir", stdfs::absolute(o.taskDir).string()});
    const auto load = loadArgs(o.dataDir, o.device, o.dtype);
    args.insert(args.end(), load.begin(), load.end());
    args.insert(args.end(), {"--trial", "{task}/trial.yaml"});

    // A coordinator that was stopped while its trials ran: wait for those and import them first, so
    // the replay below finds them instead of submitting them again.
    std::set<std::string> open;
    for (const auto& j : runs::JobLedger(project.dir()).list("", /*pendingOnly=*/true))
      if (j.group.rfind("search-" + info.searchId + "-", 0) == 0) open.insert(j.group);
    for (const auto& g : open) {
      say("search " + info.searchId + ": waiting for the trials of " + g + ", submitted earlier");
      waitForGroup(project.dir(), cluster, g, o.pollSeconds, progress);
      if (progress.cancelRequested()) throw Cancelled();
    }
    std::set<std::string> submitted;  // trials evaluated on Slurm by this job (not "reused")
    for (int round = 1;; ++round) {
      algo::StoreTrialBackend store(project.runsPath(), info, identity, evaluate);
      if (round == 1) out.storedBefore = store.storedTrials();
      algo::DeferringTrialBackend defer(store);
      out.result = algo::runSearch(space, model->sites(), options, defer);
      if (defer.wanted.empty()) {
        for (auto& t : out.result.trials)
          if (submitted.count(t.key)) t.reused = false;
        break;
      }
      std::vector<ArrayTask> tasks;
      for (const auto& w : defer.wanted) {
        submitted.insert(w.key);
        ArrayTask t;
        t.name = "search " + info.searchId + " trial " + std::to_string(w.index);
        t.kind = "search";
        t.configYaml = w.config;
        t.files = {{"trial.yaml", algo::trialFileYaml(w)}};
        t.args = args;
        tasks.push_back(t);
      }
      const auto g = submitArray(project.dir(), "search-" + info.searchId, tasks, cluster);
      say("search " + info.searchId + ": round " + std::to_string(round) + ", " + std::to_string(tasks.size()) +
          " new trial(s) (" + std::to_string(out.result.trials.size()) + " of " + std::to_string(o.trials) +
          " so far) as Slurm job array " + g.schedulerId + " (" + g.group + ")");
      const SyncResult s = waitForGroup(project.dir(), cluster, g.group, o.pollSeconds, progress);
      if (progress.cancelRequested()) throw Cancelled();
      auto store2 = project.openStore();
      for (const auto& j : s.jobs)
        if (j.runId == 0 || store2.getRun(j.runId).status != runs::RunStatus::Finished)
          throw Error("search: " + j.name + " did not finish on Slurm (" +
                      (j.runId ? store2.getRun(j.runId).statusMessage : runs::toString(j.state)) +
                      "); the finished trials are stored: run the same search to go on");
    }
  } else {
    algo::StoreTrialBackend backend(project.runsPath(), info, identity, evaluate);
    out.storedBefore = backend.storedTrials();
    say("search " + info.searchId + ": " + info.algo + ", " + std::to_string(o.trials) + " trials, objectives " +
        o.objectives + ", " + std::to_string(out.storedBefore) + " trials of this model/eval in the store");
    out.result = algo::runSearch(space, model->sites(), options, backend, progress);
  }
  out.summaryId = algo::recordSearchSummary(project.runsPath(), project.exportsDir(), info, options, space.toYaml(),
                                            out.result);
  return out;
}

JobOutcome runSearchJob(const SearchJobOptions& options, jobs::Progress& progress) {
  const SearchRun r = runSearchFull(options, progress);
  JobOutcome o;
  o.runId = r.summaryId;
  o.summary = "search " + r.info.searchId + ": " + std::to_string(r.result.trials.size()) + " trials, front of " +
              std::to_string(r.result.front.size()) + ", summary run " + std::to_string(r.summaryId) +
              (options.cluster.backend == "slurm" ? " (trials evaluated on Slurm)" : "");
  return o;
}

}  // namespace qs::workflow

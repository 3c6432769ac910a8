#include "core/cluster/slurm.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>
#include <sstream>

#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/subprocess.h"

namespace qs::cluster {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// The first meaningful line of a tool's complaint, without "sbatch: error: " noise.
std::string firstLine(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty()) continue;
    // "sbatch: error: invalid partition specified: x" -> "invalid partition specified: x"
    for (const char* noise : {"sbatch: ", "scancel: ", "scontrol: ", "error: ", "Batch job submission failed: "})
      if (line.rfind(noise, 0) == 0) line = line.substr(std::strlen(noise));
    return line;
  }
  return "";
}

// "key=value key2=value2" of `scontrol show job -o` (values have no spaces except in a few
// fields we do not read).
std::map<std::string, std::string> fields(const std::string& line) {
  std::map<std::string, std::string> out;
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    size_t eq = word.find('=');
    if (eq != std::string::npos) out[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return out;
}

// "2-5%2", "1,3,7", "4" -> task ids.
std::vector<std::string> expandTasks(std::string spec) {
  std::vector<std::string> out;
  size_t pct = spec.find('%');
  if (pct != std::string::npos) spec = spec.substr(0, pct);
  std::istringstream in(spec);
  std::string part;
  while (std::getline(in, part, ',')) {
    size_t dash = part.find('-');
    try {
      if (dash == std::string::npos) {
        out.push_back(std::to_string(std::stol(part)));
      } else {
        long a = std::stol(part.substr(0, dash)), b = std::stol(part.substr(dash + 1));
        for (long i = a; i <= b && i - a < 100000; ++i) out.push_back(std::to_string(i));
      }
    } catch (const std::exception&) {
    }
  }
  return out;
}

std::string shellQuote(const std::string& s) { return proc::quoteCommand({s}); }

}  // namespace

std::string batchScript(const config::SlurmProfile& p, const BatchJob& job) {
  if (job.commands.empty()) throw Error("slurm: a job group needs at least one task");
  if (job.exitFiles.size() != job.commands.size()) throw Error("slurm: one exit file per task");
  std::ostringstream s;
  s << "#!/bin/bash\n";
  s << "# Written by QuantScope: " << job.commands.size() << " task(s) of " << job.name << "\n";
  s << "#SBATCH --job-name=" << job.name << "\n";
  s << "#SBATCH --chdir=" << job.workDir << "\n";
  // Each task's log is in its own bundle (Slurm expands %a in folder names too); appended, so
  // Slurm's own lines ("CANCELLED ... DUE TO TIME LIMIT") land after the job's.
  s << "#SBATCH --output=" << job.logPattern << "\n";
  s << "#SBATCH --open-mode=append\n";
  s << "#SBATCH --array=0-" << job.commands.size() - 1;
  if (p.arrayMax > 0) s << "%" << p.arrayMax;
  s << "\n";
  if (!p.partition.empty()) s << "#SBATCH --partition=" << p.partition << "\n";
  if (!p.account.empty()) s << "#SBATCH --account=" << p.account << "\n";
  if (!p.qos.empty()) s << "#SBATCH --qos=" << p.qos << "\n";
  if (!p.gres.empty()) s << "#SBATCH --gres=" << p.gres << "\n";
  if (p.gpus > 0) s << "#SBATCH --gpus=" << p.gpus << "\n";
  if (p.cpusPerTask > 0) s << "#SBATCH --cpus-per-task=" << p.cpusPerTask << "\n";
  if (!p.mem.empty()) s << "#SBATCH --mem=" << p.mem << "\n";
  if (!p.time.empty()) s << "#SBATCH --time=" << p.time << "\n";
  for (const auto& extra : p.sbatch) s << "#SBATCH " << extra << "\n";
  s << "\nTASK=${SLURM_ARRAY_TASK_ID:-0}\n";
  s << "case \"$TASK\" in\n";
  for (size_t i = 0; i < job.commands.size(); ++i)
    s << "  " << i << ") EXIT_FILE=" << shellQuote(job.exitFiles[i]) << " ;;\n";
  s << "  *) echo \"no task $TASK in this array\" >&2; exit 2 ;;\nesac\n";
  s << "echo \"[qscope] task $TASK of job ${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-?}} on $(hostname) at $(date -u "
       "+%Y-%m-%dT%H:%M:%SZ)\"\n";
  if (!p.setup.empty()) s << "# setup (project.yaml slurm profile)\n" << p.setup << (p.setup.back() == '\n' ? "" : "\n");
  // SIGTERM (scancel, the time limit) goes to every process of the step: qscope takes it as a
  // cancel and marks its run cancelled in the bundle; the shell only notes it and keeps waiting
  // so that it can record the exit status.
  s << "trap 'echo \"[qscope] SIGTERM from Slurm: the run is being cancelled\"' TERM\n";
  s << "case \"$TASK\" in\n";
  for (size_t i = 0; i < job.commands.size(); ++i) s << "  " << i << ") " << job.commands[i] << " & ;;\n";
  s << "esac\n";
  s << "PID=$!\n";
  s << "while :; do wait \"$PID\"; kill -0 \"$PID\" 2>/dev/null || break; done\n";
  s << "wait \"$PID\"; RC=$?\n";
  s << "echo \"$RC\" > \"$EXIT_FILE.tmp\" && mv \"$EXIT_FILE.tmp\" \"$EXIT_FILE\"\n";
  s << "echo \"[qscope] exit status $RC at $(date -u +%Y-%m-%dT%H:%M:%SZ)\"\n";
  s << "exit $RC\n";
  return s.str();
}

Slurm::Slurm(std::string binDir, std::vector<std::pair<std::string, std::string>> env)
    : binDir_(std::move(binDir)), env_(std::move(env)) {}

std::string Slurm::tool(const std::string& name) const { return binDir_.empty() ? name : fs::join(binDir_, name); }

std::string Slurm::submit(const std::string& scriptPath) const {
  proc::RunOptions o;
  o.env = env_;
  o.timeoutSeconds = 120;
  const auto r = proc::run({tool("sbatch"), "--parsable", scriptPath}, o);
  if (!r.started)
    throw Error("slurm: cannot submit: " + r.startError +
                " (install the Slurm client on this machine, or set the backend to local)");
  if (r.timedOut) throw Error("slurm: sbatch did not answer within 120 s (is slurmctld reachable?)");
  if (r.exitCode != 0) {
    std::string why = firstLine(r.err);
    if (why.empty()) why = firstLine(r.out);
    throw Error("slurm: sbatch refused the job: " + (why.empty() ? "exit status " + std::to_string(r.exitCode) : why));
  }
  std::string id = trim(r.out);
  size_t semi = id.find(';');  // "1234;cluster"
  if (semi != std::string::npos) id = id.substr(0, semi);
  size_t nl = id.find_last_of('\n');
  if (nl != std::string::npos) id = id.substr(nl + 1);
  if (id.empty() || !std::all_of(id.begin(), id.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    throw Error("slurm: sbatch answered '" + trim(r.out) + "', not a job id");
  return id;
}

std::map<std::string, TaskStatus> Slurm::query(const std::vector<std::string>& ids) const {
  std::map<std::string, TaskStatus> out;
  std::set<std::string> wanted(ids.begin(), ids.end()), bases;
  for (const auto& id : ids) bases.insert(id.substr(0, id.find('_')));
  proc::RunOptions o;
  o.env = env_;
  o.timeoutSeconds = 60;
  for (const auto& base : bases) {
    // scontrol knows pending, running and recently ended jobs (MinJobAge) without accounting.
    const auto r = proc::run({tool("scontrol"), "show", "job", "-o", base}, o);
    if (!r.started) throw Error("slurm: cannot query jobs: " + r.startError);
    if (r.timedOut) throw Error("slurm: scontrol did not answer within 60 s (is slurmctld reachable?)");
    if (r.exitCode != 0) {
      // "Invalid job id specified": the controller has purged it (sacct below). Anything else (the
      // controller down) is an error: no job may be judged lost because nobody answered.
      if (r.err.find("Invalid job id") != std::string::npos) continue;
      throw Error("slurm: scontrol could not report job " + base + ": " + firstLine(r.err + r.out));
    }
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
      auto f = fields(line);
      if (!f.count("JobState")) continue;
      std::vector<std::string> taskIds;
      if (f.count("ArrayTaskId") && f.count("ArrayJobId")) {
        for (const auto& t : expandTasks(f["ArrayTaskId"])) taskIds.push_back(f["ArrayJobId"] + "_" + t);
      } else if (f.count("JobId")) {
        taskIds.push_back(f["JobId"]);
      }
      for (const auto& tid : taskIds) {
        TaskStatus t;
        t.id = tid;
        t.state = mapState(f["JobState"]);
        const std::string node = f.count("BatchHost") ? f["BatchHost"] : f["NodeList"];
        t.node = node == "(null)" ? "" : node;
        t.elapsedS = parseDuration(f["RunTime"]);
        t.reason = f["Reason"] == "None" ? "" : f["Reason"];
        out[tid] = t;
      }
    }
  }
  // Accounting, where the cluster has it, remembers jobs scontrol has forgotten.
  std::vector<std::string> missing;
  for (const auto& id : wanted)
    if (!out.count(id)) missing.push_back(id);
  if (!missing.empty()) {
    std::string list;
    for (const auto& id : missing) list += (list.empty() ? "" : ",") + id;
    const auto r = proc::run({tool("sacct"), "-n", "-P", "-X", "-j", list, "-o", "JobID,State,NodeList,ElapsedRaw,Reason"}, o);
    if (r.started && r.exitCode == 0) {
      std::istringstream in(r.out);
      std::string line;
      while (std::getline(in, line)) {
        std::vector<std::string> col;
        std::istringstream ls(line);
        std::string c;
        while (std::getline(ls, c, '|')) col.push_back(c);
        if (col.size() < 4 || !wanted.count(col[0])) continue;
        TaskStatus t;
        t.id = col[0];
        t.state = mapState(col[1]);
        t.node = col[2] == "None assigned" ? "" : col[2];
        try {
          t.elapsedS = std::stod(col[3]);
        } catch (const std::exception&) {
        }
        if (col.size() > 4 && col[4] != "None") t.reason = col[4];
        out[t.id] = t;
      }
    }
  }
  for (auto it = out.begin(); it != out.end();) it = wanted.count(it->first) ? std::next(it) : out.erase(it);
  return out;
}

void Slurm::cancel(const std::vector<std::string>& ids) const {
  if (ids.empty()) return;
  std::vector<std::string> argv = {tool("scancel")};
  argv.insert(argv.end(), ids.begin(), ids.end());
  proc::RunOptions o;
  o.env = env_;
  const auto r = proc::run(argv, o);
  if (!r.started) throw Error("slurm: cannot cancel: " + r.startError);
  if (r.exitCode != 0) throw Error("slurm: scancel refused: " + firstLine(r.err));
}

runs::JobState Slurm::mapState(const std::string& slurmState) {
  std::string s = slurmState.substr(0, slurmState.find(' '));  // "CANCELLED by 0"
  using runs::JobState;
  if (s == "PENDING" || s == "REQUEUED" || s == "REQUEUE_HOLD" || s == "REQUEUE_FED" || s == "RESV_DEL_HOLD" ||
      s == "SUSPENDED" || s == "STOPPED")
    return JobState::Pending;
  if (s == "RUNNING" || s == "CONFIGURING" || s == "COMPLETING" || s == "SIGNALING" || s == "STAGE_OUT" ||
      s == "RESIZING")
    return JobState::Running;
  if (s == "COMPLETED") return JobState::Completed;
  if (s == "CANCELLED" || s == "REVOKED") return JobState::Cancelled;
  if (s == "TIMEOUT" || s == "DEADLINE") return JobState::Timeout;
  if (s == "NODE_FAIL" || s == "BOOT_FAIL") return JobState::NodeFail;
  if (s == "OUT_OF_MEMORY") return JobState::OutOfMemory;
  if (s == "FAILED" || s == "PREEMPTED" || s == "SPECIAL_EXIT") return JobState::Failed;
  return JobState::Lost;
}

double Slurm::parseDuration(const std::string& text) {
  if (text.empty() || text == "INVALID" || text == "UNLIMITED") return 0;
  double days = 0;
  std::string rest = text;
  size_t dash = rest.find('-');
  if (dash != std::string::npos) {
    try {
      days = std::stod(rest.substr(0, dash));
    } catch (const std::exception&) {
      return 0;
    }
    rest = rest.substr(dash + 1);
  }
  std::vector<double> parts;
  std::istringstream in(rest);
  std::string p;
  while (std::getline(in, p, ':')) {
    try {
      parts.push_back(std::stod(p));
    } catch (const std::exception&) {
      return 0;
    }
  }
  double secs = 0;
  for (double v : parts) secs = secs * 60 + v;
  if (parts.size() == 2 && dash == std::string::npos) secs = parts[0] * 60 + parts[1];  // MM:SS
  return days * 86400 + secs;
}

}  // namespace qs::cluster

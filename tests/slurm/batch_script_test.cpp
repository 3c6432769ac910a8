// The Slurm batch script and the reading of Slurm's answers, without a cluster. References:
// sbatch(1) for the #SBATCH options, squeue(1)'s JOB STATE CODES for the state names, and the
// formats scontrol prints for elapsed times ("[days-]hours:minutes:seconds").
#include <gtest/gtest.h>

#include <filesystem>

#include "core/cluster/slurm.h"
#include "core/config/project_config.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "tests/support/test_paths.h"

namespace qs::cluster {
namespace {

TEST(SlurmScript, CarriesTheProfileAndRunsTheTaskChosenByTheArrayIndex) {
  config::SlurmProfile p;
  p.partition = "gpu";
  p.account = "lab";
  p.qos = "short";
  p.gres = "gpu:a100:1";
  p.cpusPerTask = 8;
  p.mem = "64G";
  p.time = "04:00:00";
  p.arrayMax = 3;
  p.sbatch = {"--constraint=a100"};
  p.setup = "module load cuda/12.4";
  BatchJob job;
  job.name = "qscope-sweep-1";
  job.workDir = "/proj";
  job.logPattern = "/proj/incoming/sweep-1/task-%a/job.log";
  job.commands = {"qscope quantize /proj --config a.yaml", "qscope quantize /proj --config b.yaml"};
  job.exitFiles = {"/proj/incoming/sweep-1/task-0/exit-status", "/proj/incoming/sweep-1/task-1/exit-status"};
  const std::string s = batchScript(p, job);
  for (const char* line :
       {"#!/bin/bash\n", "#SBATCH --job-name=qscope-sweep-1\n", "#SBATCH --chdir=/proj\n",
        "#SBATCH --output=/proj/incoming/sweep-1/task-%a/job.log\n", "#SBATCH --array=0-1%3\n",
        "#SBATCH --partition=gpu\n", "#SBATCH --account=lab\n", "#SBATCH --qos=short\n", "#SBATCH --gres=gpu:a100:1\n",
        "#SBATCH --cpus-per-task=8\n", "#SBATCH --mem=64G\n", "#SBATCH --time=04:00:00\n",
        "#SBATCH --constraint=a100\n", "module load cuda/12.4\n", "  1) qscope quantize /proj --config b.yaml & ;;\n"})
    EXPECT_NE(s.find(line), std::string::npos) << "missing: " << line << "\nin:\n" << s;
  // Every #SBATCH line comes before the first command (sbatch stops reading them there).
  EXPECT_LT(s.rfind("#SBATCH"), s.find("TASK="));
  EXPECT_EQ(s.find("--gpus"), std::string::npos) << "no GPUs asked, none requested";
}

TEST(SlurmScript, RefusesAnEmptyGroup) {
  EXPECT_THROW(batchScript({}, BatchJob{}), qs::Error);
}

TEST(SlurmStates, MapSlurmsNamesToJobStates) {
  using runs::JobState;
  EXPECT_EQ(Slurm::mapState("PENDING"), JobState::Pending);
  EXPECT_EQ(Slurm::mapState("RUNNING"), JobState::Running);
  EXPECT_EQ(Slurm::mapState("COMPLETING"), JobState::Running);
  EXPECT_EQ(Slurm::mapState("COMPLETED"), JobState::Completed);
  EXPECT_EQ(Slurm::mapState("CANCELLED by 0"), JobState::Cancelled);
  EXPECT_EQ(Slurm::mapState("TIMEOUT"), JobState::Timeout);
  EXPECT_EQ(Slurm::mapState("NODE_FAIL"), JobState::NodeFail);
  EXPECT_EQ(Slurm::mapState("OUT_OF_MEMORY"), JobState::OutOfMemory);
  EXPECT_EQ(Slurm::mapState("FAILED"), JobState::Failed);
  EXPECT_EQ(Slurm::mapState("SOMETHING_NEW"), JobState::Lost);
  EXPECT_FALSE(runs::isTerminal(JobState::Running));
  EXPECT_TRUE(runs::isTerminal(JobState::NodeFail));
}

TEST(SlurmStates, ParseElapsedTimes) {
  EXPECT_EQ(Slurm::parseDuration("00:00:07"), 7);
  EXPECT_EQ(Slurm::parseDuration("02:03:04"), 2 * 3600 + 3 * 60 + 4);
  EXPECT_EQ(Slurm::parseDuration("1-00:00:01"), 86401);
  EXPECT_EQ(Slurm::parseDuration("3:04"), 184);
  EXPECT_EQ(Slurm::parseDuration("UNLIMITED"), 0);
}

TEST(SlurmProfiles, ProjectYamlProfilesParseAndBadKeysAreNamed) {
  const auto c = config::parseProjectConfig(
      "model: m\nslurm:\n  default:\n    partition: cpu\n    time: '1:00:00'\n  gpu:\n    partition: gpu\n"
      "    gres: gpu:1\n    array_max: 4\n    sbatch: [--constraint=a100]\n    setup: module load cuda\n",
      "project.yaml");
  ASSERT_EQ(c.slurm.size(), 2u);
  EXPECT_EQ(c.slurm.at("gpu").gres, "gpu:1");
  EXPECT_EQ(c.slurm.at("gpu").arrayMax, 4);
  EXPECT_EQ(c.slurm.at("default").time, "1:00:00");
  // Round trip through the emitter.
  const auto back = config::parseProjectConfig(config::emitProjectConfig(c), "again.yaml");
  EXPECT_EQ(back.slurm.at("gpu").sbatch, c.slurm.at("gpu").sbatch);
  EXPECT_EQ(back.slurm.at("gpu").setup, "module load cuda");
  try {
    config::parseProjectConfig("model: m\nslurm:\n  gpu:\n    partiton: gpu\n", "project.yaml");
    FAIL() << "a misspelt key must be an error";
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("slurm.gpu.partiton"), std::string::npos) << e.what();
  }
  EXPECT_THROW(config::parseProjectConfig("model: m\nslurm:\n  gpu:\n    sbatch: [constraint=a100]\n", "p.yaml"),
               qs::Error);
}

}  // namespace
}  // namespace qs::cluster

namespace qs::cluster {
namespace {

// Fake Slurm commands in a folder (Slurm's own messages, as 22.05 prints them): a controller that
// does not answer is an error, never a job taken for lost; a purged job id is simply absent.
std::string fakeTools(const std::string& scontrolBody) {
  const std::string dir = test::tempDir("fake-slurm");
  for (const auto& [name, body] : std::vector<std::pair<std::string, std::string>>{
           {"scontrol", scontrolBody}, {"sacct", "echo 'Slurm accounting storage is disabled' >&2; exit 1"}}) {
    const std::string path = dir + "/" + name;
    fs::writeAtomic(path, "#!/bin/sh\n" + body + "\n");
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  }
  return dir;
}

TEST(SlurmQuery, AControllerThatDoesNotAnswerIsAnErrorNotALostJob) {
  const Slurm down(fakeTools("echo 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2; "
                             "exit 1"));
  try {
    down.query({"12_0"});
    FAIL() << "expected an error";
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Unable to contact slurm controller"), std::string::npos) << e.what();
  }
  const Slurm purged(fakeTools("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1"));
  EXPECT_TRUE(purged.query({"12_0"}).empty());
  const Slurm known(fakeTools(
      "echo 'JobId=13 ArrayJobId=12 ArrayTaskId=0 JobName=x JobState=RUNNING Reason=None RunTime=00:01:05 "
      "NodeList=n3 BatchHost=n3'; echo 'JobId=12 ArrayJobId=12 ArrayTaskId=1-2%1 JobState=PENDING "
      "Reason=JobArrayTaskLimit RunTime=00:00:00 NodeList=(null)'"));
  const auto states = known.query({"12_0", "12_2"});
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states.at("12_0").state, runs::JobState::Running);
  EXPECT_EQ(states.at("12_0").node, "n3");
  EXPECT_EQ(states.at("12_0").elapsedS, 65);
  EXPECT_EQ(states.at("12_2").state, runs::JobState::Pending);
  EXPECT_EQ(states.at("12_2").reason, "JobArrayTaskLimit");
  EXPECT_EQ(states.at("12_2").node, "");
}

}  // namespace
}  // namespace qs::cluster

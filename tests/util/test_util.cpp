// core/util and core/jobs: atomic writes, mapped files, progress plumbing.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "core/jobs/progress.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/mapped_file.h"
#include "tests/support/test_paths.h"

TEST(Fs, WriteAtomicReplacesWholeFileAndLeavesNoTemp) {
  auto dir = qs::test::tempDir("fs");
  auto path = qs::fs::join(dir, "a.txt");
  qs::fs::writeAtomic(path, "first");
  qs::fs::writeAtomic(path, "second");
  EXPECT_EQ(qs::fs::readText(path), "second");
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(Fs, ErrorsNameThePath) {
  try {
    qs::fs::readText("/no/such/dir/file.json");
    FAIL();
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/no/such/dir/file.json"), std::string::npos);
  }
  EXPECT_THROW(qs::fs::writeAtomic("/no/such/dir/out.bin", "x"), qs::Error);
}

TEST(MappedFile, MapsContentsAndRejectsFolders) {
  auto dir = qs::test::tempDir("map");
  auto path = qs::fs::join(dir, "b.bin");
  qs::fs::writeAtomic(path, std::string("\x01\x02\x03", 3));
  auto m = qs::MappedFile::open(path);
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ(m->data()[2], 3);
  EXPECT_THROW(qs::MappedFile::open(dir), qs::Error);
  EXPECT_THROW(qs::MappedFile::open(dir + "/missing"), qs::Error);
}

TEST(Progress, SubProgressMapsRangeAndForwardsCancel) {
  struct Rec : qs::jobs::CancellableProgress {
    double last = -1;
    void update(double f, const std::string&) override { last = f; }
  } parent;
  qs::jobs::SubProgress sub(parent, 0.5, 1.0);
  sub.update(0.5, "half");
  EXPECT_DOUBLE_EQ(parent.last, 0.75);
  EXPECT_FALSE(sub.cancelRequested());
  parent.requestCancel();
  EXPECT_TRUE(sub.cancelRequested());
  EXPECT_THROW(sub.checkCancel(), qs::Cancelled);
  EXPECT_NO_THROW(qs::jobs::Progress::none().checkCancel());
}

// Issue 15: a 7B quantize killed outright (SIGKILL, a second Ctrl-C) left gigabytes of scratch files
// under /tmp; the next job removes the folders of processes that no longer exist, and only those.
TEST(Fs, JobTempDirRemovesTheScratchOfKilledProcessesOnly) {
  const std::string parent = qs::test::tempDir("jobtmp");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);  // reaped: the pid no longer exists
  const auto dead = std::filesystem::path(parent) / ("qscope-quantize-" + std::to_string(child) + "-0");
  const auto alive = std::filesystem::path(parent) / ("qscope-quantize-" + std::to_string(::getppid()) + "-0");
  const auto other = std::filesystem::path(parent) / "qscope-quantize-notapid";
  for (const auto& d : {dead, alive, other}) {
    std::filesystem::create_directories(d / "spill");
    qs::fs::writeAtomic((d / "spill" / "block0.bin").string(), "x");
  }
  const std::string mine = qs::fs::makeJobTempDir("qscope-quantize", parent);
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(alive)) << "a running process keeps its folder";
  EXPECT_TRUE(std::filesystem::exists(other));
  EXPECT_TRUE(std::filesystem::is_directory(mine));
  EXPECT_EQ(std::filesystem::path(mine).filename().string().rfind("qscope-quantize-" + std::to_string(::getpid()) + "-", 0), 0u);
  EXPECT_NE(qs::fs::makeJobTempDir("qscope-quantize", parent), mine);  // a second job of the process gets its own
}

// The background job queue (ui/job_queue.h) and its ETA estimate (core/jobs/eta.h): one job at a
// time in order, cancellation of running and queued jobs, the user-facing failure message, and a
// responsive event loop while a job runs.
#include <gtest/gtest.h>

#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QTimer>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "core/jobs/eta.h"
#include "core/util/error.h"
#include "tests/ui/ui_test_app.h"
#include "ui/job_queue.h"
#include "ui/jobs_panel.h"

namespace {

using qs::ui::JobQueue;

class JobQueueTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { qs::test::uiApp(); }
};

// A job that reports progress until released or cancelled.
JobQueue::Work waitingJob(std::atomic<bool>& release, std::atomic<bool>& started) {
  return [&release, &started](qs::jobs::Progress& p) {
    started = true;
    for (int i = 0; !release; ++i) {
      p.update(0.5, "step " + std::to_string(i));
      p.checkCancel();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return QStringLiteral("released");
  };
}

TEST(EtaEstimator, LinearRateFromTheFirstProgress) {
  qs::jobs::EtaEstimator eta;
  eta.update(0.0, 0.0);
  EXPECT_LT(eta.remainingS(), 0) << "no progress yet";
  eta.update(3.0, 0.1);  // 3 s of set-up before the first progress: not part of the rate
  EXPECT_LT(eta.remainingS(), 0) << "one point gives no rate";
  eta.update(5.0, 0.3);
  // By hand: 0.2 of the work in 2 s -> 0.7 left takes 7 s.
  EXPECT_NEAR(eta.remainingS(), 7.0, 1e-12);
  eta.update(6.0, 0.25);  // a stage restarting lower does not move the bar back
  EXPECT_DOUBLE_EQ(eta.fraction(), 0.3);
  eta.update(7.0, 1.0);
  EXPECT_EQ(eta.remainingS(), 0);
}

TEST(EtaEstimator, FormatsDurations) {
  EXPECT_EQ(qs::jobs::formatDuration(0), "0:00");
  EXPECT_EQ(qs::jobs::formatDuration(65.4), "1:05");
  EXPECT_EQ(qs::jobs::formatDuration(3723), "1:02:03");
  EXPECT_EQ(qs::jobs::formatDuration(-1), "\u2014");
}

TEST_F(JobQueueTest, RunsOneJobAtATimeInOrderAndReportsProgress) {
  JobQueue q;
  std::atomic<bool> release{false}, started{false};
  std::atomic<bool> secondRan{false};
  const int a = q.enqueue("first", waitingJob(release, started));
  const int b = q.enqueue("second", [&](qs::jobs::Progress&) {
    secondRan = true;
    return QStringLiteral("done");
  });
  ASSERT_TRUE(qs::test::waitUntil([&] { return started.load() && !q.job(a)->stage.isEmpty(); }));
  EXPECT_EQ(q.job(a)->state, JobQueue::State::Running);
  EXPECT_EQ(q.job(b)->state, JobQueue::State::Queued);
  EXPECT_EQ(q.runningId(), a);
  EXPECT_EQ(q.queuedCount(), 1);
  EXPECT_TRUE(q.job(a)->stage.startsWith("step ")) << q.job(a)->stage.toStdString();
  EXPECT_DOUBLE_EQ(q.job(a)->fraction, 0.5);
  EXPECT_FALSE(secondRan.load());
  release = true;
  ASSERT_TRUE(q.waitForIdle(10000));
  EXPECT_EQ(q.job(a)->state, JobQueue::State::Finished);
  EXPECT_EQ(q.job(a)->result, "released");
  EXPECT_EQ(q.job(b)->state, JobQueue::State::Finished);
  EXPECT_TRUE(secondRan.load());
}

TEST_F(JobQueueTest, CancelsRunningAndQueuedJobs) {
  JobQueue q;
  std::atomic<bool> release{false}, started{false}, queuedRan{false};
  std::vector<std::pair<int, JobQueue::State>> finished;
  QObject::connect(&q, &JobQueue::jobFinished, [&](int id, JobQueue::State s) { finished.push_back({id, s}); });
  const int a = q.enqueue("long", waitingJob(release, started));
  const int b = q.enqueue("queued", [&](qs::jobs::Progress&) {
    queuedRan = true;
    return QString();
  });
  ASSERT_TRUE(qs::test::waitUntil([&] { return started.load(); }));
  q.cancel(b);
  EXPECT_EQ(q.job(b)->state, JobQueue::State::Cancelled);
  q.cancel(a);
  ASSERT_TRUE(q.waitForIdle(10000));
  EXPECT_EQ(q.job(a)->state, JobQueue::State::Cancelled);
  EXPECT_FALSE(queuedRan.load()) << "a cancelled queued job never runs";
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(finished[0].first, b);
  EXPECT_EQ(finished[1].first, a);
}

TEST_F(JobQueueTest, FailureShowsTheCoreMessageNotAStackTrace) {
  JobQueue q;
  const int user = q.enqueue("bad config", [](qs::jobs::Progress&) -> QString {
    throw qs::Error("cfg.yaml: key 'quantize.wbits': must be 2..8 or 16, got 1");
  });
  const int internal = q.enqueue("torch", [](qs::jobs::Progress&) -> QString {
    throw std::runtime_error("shape mismatch [2, 3] vs [3, 4]\nException raised from at::native::mm at mm.cpp:12\nframe #0 ...");
  });
  ASSERT_TRUE(q.waitForIdle(10000));
  EXPECT_EQ(q.job(user)->state, JobQueue::State::Failed);
  EXPECT_EQ(q.job(user)->result, "cfg.yaml: key 'quantize.wbits': must be 2..8 or 16, got 1");
  EXPECT_EQ(q.job(internal)->state, JobQueue::State::Failed);
  EXPECT_EQ(q.job(internal)->result, "computation failed: shape mismatch [2, 3] vs [3, 4]");
}

TEST_F(JobQueueTest, EventLoopKeepsTurningWhileAJobRuns) {
  JobQueue q;
  int ticks = 0;
  QTimer timer;
  QObject::connect(&timer, &QTimer::timeout, [&] { ++ticks; });
  timer.start(10);
  const int id = q.enqueue("busy worker", [](qs::jobs::Progress& p) {
    // Keeps the worker busy for 600 ms without sleeping, as a computation would.
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
    volatile double x = 0;
    while (std::chrono::steady_clock::now() < end) {
      for (int i = 0; i < 1000; ++i) x = x + i;
      p.update(0.5, "computing");
    }
    return QStringLiteral("ok");
  });
  ASSERT_TRUE(q.waitForIdle(10000));
  EXPECT_EQ(q.job(id)->state, JobQueue::State::Finished);
  // A blocked event loop would give ~0 ticks; 600 ms at 10 ms gives up to 60 (2 shared cores).
  EXPECT_GE(ticks, 15) << "the timer starved while the job ran";
}

TEST_F(JobQueueTest, PanelRowShowsStageAndCancelButton) {
  JobQueue q;
  qs::ui::JobsPanel panel(&q);
  std::atomic<bool> release{false}, started{false};
  const int id = q.enqueue("stage job", waitingJob(release, started));
  ASSERT_TRUE(qs::test::waitUntil([&] { return !q.job(id)->stage.isEmpty(); }));
  ASSERT_TRUE(qs::test::waitUntil([&] { return panel.stageLabel(id)->text().startsWith("step "); }));
  EXPECT_EQ(panel.progressBar(id)->text(), "50%");
  EXPECT_FALSE(panel.cancelButton(id)->isHidden());
  panel.cancelButton(id)->click();
  ASSERT_TRUE(q.waitForIdle(10000));
  EXPECT_EQ(q.job(id)->state, JobQueue::State::Cancelled);
  EXPECT_TRUE(panel.cancelButton(id)->isHidden());
}

}  // namespace

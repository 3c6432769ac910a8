// The streamed evaluation's memory against the whole model's, measured by the caller on the
// allocator it has (the counting CPU allocator in tests/eval/test_streaming.cpp, the device's
// allocator statistics in tests/gpu/streaming_cuda_test.cpp): records the peaks and checks that
// streaming held about one block, under a third of the whole path, and no more than the plan
// estimated for `batches` windows of `tokens`.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/model/layerwise.h"
#include "core/model/model.h"

namespace qs::test {

inline void expectStreamedPeakAboutOneBlock(const model::Model& m, const model::ExecOptions& stream, int64_t batches,
                                            int64_t tokens, int64_t wholePeak, int64_t streamPeak) {
  const model::Model::Footprint f = m.footprint();
  model::Workload work;
  work.batches = batches;
  work.tokens = tokens;
  const model::ExecPlan plan = model::planExecution(m, work, stream);
  ::testing::Test::RecordProperty("whole_peak_bytes", std::to_string(wholePeak));
  ::testing::Test::RecordProperty("stream_peak_bytes", std::to_string(streamPeak));
  ::testing::Test::RecordProperty("stream_estimate_bytes", std::to_string(plan.streamingBytes));
  ::testing::Test::RecordProperty("max_block_bytes", std::to_string(f.maxBlockBytes()));
  EXPECT_GE(wholePeak, f.totalBytes()) << "the whole path holds every block";
  EXPECT_LT(streamPeak, f.maxBlockBytes() * 3) << "one block at a time (block " << f.maxBlockBytes() << " B)";
  EXPECT_LT(streamPeak * 3, wholePeak) << "stream " << streamPeak << " B vs whole " << wholePeak << " B";
  EXPECT_LE(streamPeak, plan.streamingBytes) << "the plan's estimate bounds what was allocated";
}

}  // namespace qs::test

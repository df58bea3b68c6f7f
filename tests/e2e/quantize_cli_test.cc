// `quanta imatrix` and `quanta quantize` end to end: help, an importance matrix from text,
// a calibrated quantization that loads and runs, and clear errors (bad type, wrong argument
// count, the output being the input).
#include <gtest/gtest.h>

#include <string>

#include "testlib/shared_data.h"

namespace quanta {
namespace {

std::string shared(const std::string& rel) { return testlib::shared_path(rel); }

int quanta(const std::string& args, std::string* out, std::string* err) {
  return testlib::run_command(testlib::quanta_binary() + " " + args, out, err);
}

TEST(QuantizeCli, HelpListsTypesAndOptions) {
  std::string out, err;
  ASSERT_EQ(quanta("quantize --help", &out, &err), 0) << err;
  for (const char* s : {"Q4_K_M", "Q8_0", "--imatrix", "--keep-output-f16", "--pure"}) {
    EXPECT_NE(out.find(s), std::string::npos) << s;
  }
  ASSERT_EQ(quanta("imatrix --help", &out, &err), 0) << err;
  EXPECT_NE(out.find("--chunks"), std::string::npos);
}

TEST(QuantizeCli, CalibratedQuantizationRuns) {
  const std::string dir = testlib::temp_dir();
  std::string out, err;
  ASSERT_EQ(quanta("imatrix -m " + shared("models/stories260K.gguf") + " -f " +
                       shared("text/frankenstein.txt") + " -o " + dir + "/s.dat --ctx 64 --chunks 4 -t 2",
                   &out, &err),
            0)
      << err;
  EXPECT_NE(err.find("35 entries from 4 chunks"), std::string::npos) << err;
  ASSERT_EQ(quanta("quantize " + shared("models/stories260K.gguf") + " " + dir +
                       "/q.gguf Q4_0 --imatrix " + dir + "/s.dat -t 2",
                   &out, &err),
            0)
      << err;
  EXPECT_NE(err.find("importance-weighted: 30 tensors"), std::string::npos) << err;
  ASSERT_EQ(quanta("run -m " + dir + "/q.gguf -p 'Once upon a time' -n 8 --temp 0 --ids", &out,
                   &err),
            0)
      << err;
  EXPECT_FALSE(out.empty());
}

TEST(QuantizeCli, ClearErrors) {
  const std::string model = shared("models/stories260K.gguf");
  std::string out, err;
  EXPECT_EQ(quanta("quantize " + model + " /tmp/never.gguf Q3_K_XL", &out, &err), 1);
  EXPECT_NE(err.find("unknown quantization type 'Q3_K_XL'"), std::string::npos) << err;
  EXPECT_EQ(quanta("quantize " + model + " Q4_0", &out, &err), 1);
  EXPECT_NE(err.find("expected IN.gguf OUT.gguf TYPE"), std::string::npos) << err;
  EXPECT_EQ(quanta("quantize " + model + " " + model + " Q4_0", &out, &err), 1);
  EXPECT_NE(err.find("is the input file"), std::string::npos) << err;
  EXPECT_EQ(quanta("imatrix -m " + model + " -f /nonexistent.txt", &out, &err), 1);
  EXPECT_NE(err.find("cannot open text file"), std::string::npos) << err;
}

}  // namespace
}  // namespace quanta

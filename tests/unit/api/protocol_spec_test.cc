// Parsing of quanta's "speculative" request extension (n-gram lookup speculative decoding).
#include <gtest/gtest.h>

#include <string>

#include "api/protocol.h"

namespace quanta::api {
namespace {

serve::SpecParams spec_of(const std::string& field) {
  const std::string body = R"({"prompt":"hi")" + (field.empty() ? "" : "," + field) + "}";
  return parse_request(Endpoint::kCompletions, body, 1).gen.speculative;
}

std::string bad_param(const std::string& field) {
  try {
    spec_of(field);
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    return e.param;
  }
  return "(accepted)";
}

TEST(ProtocolSpeculative, ParsesTheExtensionField) {
  EXPECT_EQ(spec_of("").ngram, -1);  // absent: the server's default
  EXPECT_EQ(spec_of("").max_draft, -1);
  EXPECT_EQ(spec_of(R"("speculative":null)").ngram, -1);
  const serve::SpecParams s = spec_of(R"("speculative":{"ngram":2,"max_draft":5})");
  EXPECT_EQ(s.ngram, 2);
  EXPECT_EQ(s.max_draft, 5);
  EXPECT_EQ(spec_of(R"("speculative":{"max_draft":4})").ngram, 3);
  EXPECT_EQ(spec_of(R"("speculative":{"ngram":0})").ngram, 0);
  EXPECT_EQ(spec_of(R"("speculative":true)").ngram, 3);
  EXPECT_EQ(spec_of(R"("speculative":true)").max_draft, -1);
  EXPECT_EQ(spec_of(R"("speculative":false)").ngram, 0);
}

TEST(ProtocolSpeculative, BadValuesNameTheField) {
  EXPECT_EQ(bad_param(R"("speculative":{"ngram":17})"), "speculative.ngram");
  EXPECT_EQ(bad_param(R"("speculative":{"ngram":-1})"), "speculative.ngram");
  EXPECT_EQ(bad_param(R"("speculative":{"max_draft":0})"), "speculative.max_draft");
  EXPECT_EQ(bad_param(R"("speculative":{"max_draft":"4"})"), "speculative.max_draft");
  EXPECT_EQ(bad_param(R"("speculative":{"draft":4})"), "speculative.draft");
  EXPECT_EQ(bad_param(R"("speculative":3)"), "speculative");
}

}  // namespace
}  // namespace quanta::api

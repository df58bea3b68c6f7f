// expect_error(fn, fragment): the test fails unless fn() throws quanta::Error whose message
// contains `fragment` (so the message really names the problem).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace quanta::testlib {

template <typename Fn>
void expect_error(Fn fn, const std::string& fragment) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << "message: " << e.what() << "\nexpected: " << fragment;
  }
}

}  // namespace quanta::testlib

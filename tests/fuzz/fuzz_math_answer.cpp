// libFuzzer target: the math answer grader (include/qstar/tasks/math/grader.hpp):
// extract_answer, normalize_answer, answers_equal (both modes) and canonical_key.
//
// Input: the whole input is a solution text for extract_answer; its first line is a gold,
// the rest an answer, for normalize_answer / answers_equal / canonical_key, also with small
// GraderLimits so the bounds themselves are exercised.
//
// Oracles (beyond "no crash, no sanitizer report, no exception, no timeout"):
//  * an extracted answer is a substring of the text;
//  * answers_equal(s, s) holds exactly when normalize_answer(s) is non-empty (both modes;
//    past max_answer_bytes: when s is not blank);
//  * canonical_key and answers_equal are deterministic;
//  * small limits never make answers_equal say true where normalised texts differ and the
//    default limits say false (bounds only ever cut work, they don't invent equalities).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "qstar/tasks/math/grader.hpp"

namespace m = qstar::math;
using qstar_fuzz::shown;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  const std::string_view text = qstar_fuzz::as_view(data, size);

  if (const auto a = m::extract_answer(text)) {
    FUZZ_CHECK(text.find(*a) != std::string_view::npos, "extracted '%s' is not in the text", shown(*a).c_str());
  }

  const auto nl = text.find('\n');
  const std::string gold(text.substr(0, nl));
  const std::string answer(nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1));

  for (const auto mode : {m::GradeMode::Lenient, m::GradeMode::Strict}) {
    const bool self = m::answers_equal(gold, gold, mode);
    const bool self_expected = gold.size() > m::GraderLimits{}.max_answer_bytes
                                   ? gold.find_first_not_of(" \t\r\n") != std::string::npos
                                   : !m::normalize_answer(gold).empty();
    FUZZ_CHECK(self == self_expected, "answers_equal(s, s) is %d for '%s'", self, shown(gold).c_str());
    const bool eq = m::answers_equal(gold, answer, mode);
    FUZZ_CHECK(eq == m::answers_equal(gold, answer, mode), "answers_equal is not deterministic");
    m::GraderLimits small;
    small.max_steps = 500;
    small.max_depth = 8;
    small.max_exponent = 10;
    small.max_exact_bits = 128;
    small.max_elements = 4;
    const bool eq_small = m::answers_equal(gold, answer, mode, small);
    if (eq_small && !eq) {
      FUZZ_CHECK(false, "small limits invent an equality: '%s' vs '%s'", shown(gold).c_str(), shown(answer).c_str());
    }
  }
  const std::string k1 = m::canonical_key(answer);
  FUZZ_CHECK(k1 == m::canonical_key(answer), "canonical_key is not deterministic for '%s'", shown(answer).c_str());
  (void)m::canonical_key(gold);
  return 0;
}

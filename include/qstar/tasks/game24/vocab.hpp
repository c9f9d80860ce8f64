// The vocabularies of the Game of 24 models: the character set of the shipped models and
// the word-level tokenizer.json the trainer writes for new ones. Header-only; the tokenizer
// builders come from qstar::hf (link qstar::hf to use game24_word_tokenizer_json).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "qstar/hf/model_io.hpp"

namespace qstar::game24 {

/// The character set of the shipped Game of 24 models: "\n" and printable ASCII 32..126
/// (hf::char_tokenizer_json(game24_chars()) is their character-level tokenizer.json).
inline std::string game24_chars() {
  std::string s = "\n";
  for (int c = 32; c <= 126; ++c) s.push_back(static_cast<char>(c));
  return s;
}

/// The words of the Game of 24 prompt (Game24Task::format's instruction) and of its step
/// texts ("left", "Answer"), each one token in game24_word_tokenizer_json().
inline std::vector<std::string> game24_words() {
  return {"Use",  "numbers", "and",       "basic", "arithmetic", "operations", "to",    "obtain",
          "Each", "step",    "choose",    "two",   "of",         "the",        "remaining", "a",
          "new",  "number",  "Input",     "Steps", "left",       "Answer"};
}

/// The pre-tokenizer regex of game24_word_tokenizer_json() (hf::word_tokenizer_pattern()).
inline std::string_view game24_word_pattern() { return hf::word_tokenizer_pattern(); }

/// hf::word_tokenizer_json(game24_chars(), game24_words(), 999): numbers up to 999, the
/// prompt's words and single characters are one token each, so a step
/// ("4 + 6 = 10 (left: 5 10 10)") is 13 tokens instead of 27 characters.
inline std::string game24_word_tokenizer_json() {
  const std::vector<std::string> words = game24_words();
  return hf::word_tokenizer_json(game24_chars(), words, 999);
}

}  // namespace qstar::game24

// The math task (qstar/tasks/math/task.hpp, entry.hpp): prompts (plain and chat), the step
// rule, answer extraction over a trajectory, voting keys, the grader-backed check, the
// registered entry; and end to end, best-of-N with a scripted generator that writes correct
// and incorrect solutions in different but equivalent forms: majority and weighted voting
// merge equivalent answers (\frac12, 0.5, 1/2).
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "qstar/core/tree.hpp"
#include "qstar/search/search.hpp"
#include "qstar/tasks/builtin.hpp"
#include "qstar/tasks/math/entry.hpp"
#include "qstar/tasks/math/task.hpp"

using namespace qstar;

namespace {

/// A trajectory of `steps` under the root of `t`; returns its leaf.
NodeId path(Tree& t, const std::vector<std::string>& steps) {
  NodeId at = Tree::root();
  for (const auto& s : steps) at = t.add_child(at, Step{s, {}, 0.0, 1, FinishReason::StepEnd});
  return at;
}

}  // namespace

TEST_CASE("math task: plain and chat prompts, presets, params validation") {
  const Problem p{"1", "What is 1+1?", "2"};
  const math::MathTask plain;
  CHECK(plain.format(p) == "What is 1+1?\nPlease reason step by step, and put your final answer within \\boxed{}.\n\n");
  CHECK(!plain.uses_chat());
  math::MathParams mp;
  mp.instruction = math::instruction_preset("none");
  mp.plain_template = "Question: {question}\nAnswer:";
  CHECK(math::MathTask(mp).format(p) == "Question: What is 1+1?\nAnswer:");
  mp = {};
  mp.system = "You are a careful mathematician.";
  mp.instruction = math::instruction_preset("answer-is");
  // A renderer in ChatML form (the layout Qwen2.5's chat template produces).
  const math::ChatRenderer chatml = [](const std::vector<math::ChatTurn>& m) {
    std::string out;
    for (const auto& t : m) out += "<|im_start|>" + t.role + "\n" + t.content + "<|im_end|>\n";
    return out + "<|im_start|>assistant\n";
  };
  const math::MathTask chat(mp, chatml);
  CHECK(chat.uses_chat());
  CHECK(chat.format(p) ==
        "<|im_start|>system\nYou are a careful mathematician.<|im_end|>\n<|im_start|>user\nWhat is 1+1?\nSolve the "
        "problem step by step. End with a line \"The answer is N.\" where N is the final answer.<|im_end|>\n"
        "<|im_start|>assistant\n");
  CHECK(chat.messages(p).size() == 2);
  CHECK_THROWS_WITH_AS(math::instruction_preset("fancy"), doctest::Contains("'fancy'"), InvalidArgument);
  math::MathParams bad;
  bad.user_template = "{instruction}";
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("user_template"), InvalidArgument);
  bad = {};
  bad.step_delimiter = "";
  CHECK_THROWS_WITH_AS(math::MathTask{bad}, doctest::Contains("step_delimiter"), InvalidArgument);
  bad = {};
  bad.plain_template = "no placeholder";
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("plain_template"), InvalidArgument);
  CHECK(math::grade_mode_from_string("strict") == math::GradeMode::Strict);
  CHECK_THROWS_WITH_AS(math::grade_mode_from_string("loose", "--mode"), doctest::Contains("--mode: 'loose'"),
                       InvalidArgument);
}

TEST_CASE("math task: terminal steps, extraction over the trajectory, keys, check") {
  const math::MathTask task;
  CHECK(task.is_terminal(Step{"So the total is \\boxed{18}.", {}, 0, 1, FinishReason::StepEnd}));
  CHECK(task.is_terminal(Step{"The answer is 7.", {}, 0, 1, FinishReason::StepEnd}));
  CHECK(!task.is_terminal(Step{"First, 16 - 3 - 4 = 9 eggs.", {}, 0, 1, FinishReason::StepEnd}));
  CHECK(!task.is_terminal(Step{"So \\boxed{\\frac{1}{2}", {}, 0, 1, FinishReason::StepEnd}));  // unbalanced
  CHECK(task.is_terminal(Step{"First, 16 - 3", {}, 0, 1, FinishReason::Eos}));
  CHECK(task.is_terminal(Step{"First, 16 - 3", {}, 0, 1, FinishReason::Length}));

  Tree t;
  const NodeId leaf = path(t, {"We have \\boxed{3} apples at first.", "Then we eat one.", "So \\boxed{2} remain."});
  CHECK(task.extract_answer(t.trajectory(leaf)) == std::optional<std::string>("2"));
  // A \boxed{} in an earlier step is the answer when the last step has none.
  const NodeId leaf2 = path(t, {"So \\boxed{\\frac{3}{4}}.", "Done."});
  CHECK(task.extract_answer(t.trajectory(leaf2)) == std::optional<std::string>("\\frac{3}{4}"));
  const NodeId leaf3 = path(t, {"No answer here."});
  CHECK(!task.extract_answer(t.trajectory(leaf3)).has_value());
  CHECK(!task.extract_answer(t.trajectory(Tree::root())).has_value());

  CHECK(task.canonicalize("\\frac12") == task.canonicalize("0.5"));
  CHECK(task.canonicalize("1/2") == task.canonicalize("0.5"));
  CHECK(task.canonicalize("\\frac{1}{2}") != task.canonicalize("\\frac{2}{3}"));
  const Problem p{"1", "q", "1,234"};
  CHECK(task.check(p, "1234"));
  CHECK(!task.check(p, "1235"));
  CHECK(!task.check(Problem{"2", "q", std::nullopt}, "1234"));  // no gold: never correct
  CHECK(task.check(Problem{"3", "q", "\\frac{1}{2}"}, "0.5"));
}

TEST_CASE("math entry: registered, parser, data options, default data") {
  const auto& r = builtin_tasks();
  REQUIRE(r.find("math") != nullptr);
  CHECK(r.names().front() == "game24");  // the default stays
  const TaskEntry& e = r.at("math");
  CHECK(e.default_data == "math/gsm8k_test.jsonl");
  CHECK(e.step_delimiter == "\n\n");
  CHECK(e.answer_marker.empty());
  CHECK(e.parse_problem("What is 2+3?").text == "What is 2+3?");
  CHECK_THROWS_AS(e.parse_problem("   "), ParseError);
  const std::string m500 = std::string(QSTAR_MATH_DATA_DIR) + "/math500_test.jsonl";
  CHECK(e.load_data(m500, std::pair{1, 10}, {}).size() == 10);
  REQUIRE(e.load_data);
  CHECK(e.load_data(m500, std::nullopt, {{"level", "1,2"}, {"subject", "Algebra"}}).size() ==
        math::load_jsonl(m500, [] {
          math::DataParams p;
          p.levels = {1, 2};
          p.subjects = {"Algebra"};
          return p;
        }()).size());
  CHECK(e.load_data(m500, std::nullopt, {{"limit", "3"}}).size() == 3);
  CHECK_THROWS_WITH_AS(e.load_data(m500, std::nullopt, {{"limit", "x"}}), doctest::Contains("--limit: 'x'"),
                       InvalidArgument);
  CHECK_THROWS_WITH_AS(e.load_data(m500, std::nullopt, {{"level", "1,a"}}), doctest::Contains("--level: 'a'"),
                       InvalidArgument);
  // Chat prompts through the entry.
  REQUIRE(e.make_chat_task);
  const AnyTask chat = e.make_chat_task([](const std::vector<std::pair<std::string, std::string>>& m) {
    std::string out;
    for (const auto& [role, content] : m) out += "[" + role + "]" + content;
    return out + "[assistant]";
  });
  CHECK(chat.format(Problem{"1", "Q?", std::nullopt}) ==
        "[user]Q?\nPlease reason step by step, and put your final answer within \\boxed{}.[assistant]");
  // A GSM8K gold and its answer checked through AnyTask.
  const auto gsm = e.load_data(std::string(QSTAR_MATH_DATA_DIR) + "/gsm8k_test.jsonl", std::pair{1, 1}, {});
  REQUIRE(gsm.size() == 1);
  const AnyTask task = e.make_task();
  CHECK(task.has_check());
  CHECK(task.check(gsm[0], "18"));
  CHECK(task.check(gsm[0], "\\$18"));
  CHECK(!task.check(gsm[0], "19"));
}

// ---- end to end: voting by value -------------------------------------------------------------

namespace {

/// Writes two-step solutions from a fixed list, one per new trajectory (the i-th root
/// proposal takes solution i mod size): correct ones in four forms of 1/2, wrong ones in
/// three forms of 2/3.
struct ScriptedSolutions {
  std::vector<std::vector<std::string>> solutions = {
      {"Half of the cake is left.", "So the answer is \\boxed{\\frac12}."},
      {"We divide 1 by 2.", "The fraction left is \\boxed{0.5}"},
      {"One of two equal parts remains.", "Hence \\boxed{1/2}."},
      {"She ate half.", "Therefore \\boxed{\\frac{1}{2}}."},
      {"Two of three parts remain.", "So \\boxed{\\frac{2}{3}}."},
      {"Two thirds remain.", "The result: \\boxed{\\frac{2}{3}}"},
      {"Four of six slices remain.", "So \\boxed{\\dfrac{4}{6}}."},
  };
  int next = 0;
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch) {
    std::vector<std::vector<Step>> out(batch.size());
    for (std::size_t r = 0; r < batch.size(); ++r) {
      const auto& req = batch[r];
      for (int c = 0; c < req.num_candidates; ++c) {
        if (req.prefix.empty()) {
          const auto& s = solutions[static_cast<std::size_t>(next++) % solutions.size()];
          out[r].push_back(Step{s[0], {}, -1.0, 5, FinishReason::StepEnd});
        } else {
          for (const auto& s : solutions)
            if (s[0] == req.prefix.text(0)) out[r].push_back(Step{s[1], {}, -1.0, 5, FinishReason::Eos});
        }
      }
    }
    return out;
  }
  std::string name() const { return "scripted-math"; }
};

/// Scores the final step by its text (first steps 0.5): the correct forms 0.7 each; the wrong
/// \frac{2}{3} 0.9 each and \dfrac{4}{6} 0.1 (so a naive best-score pick is wrong).
struct ScriptedScores {
  std::map<std::string, double, std::less<>> final_score = {
      {"So the answer is \\boxed{\\frac12}.", 0.7}, {"The fraction left is \\boxed{0.5}", 0.7},
      {"Hence \\boxed{1/2}.", 0.7},                 {"Therefore \\boxed{\\frac{1}{2}}.", 0.7},
      {"So \\boxed{\\frac{2}{3}}.", 0.9},           {"The result: \\boxed{\\frac{2}{3}}", 0.9},
      {"So \\boxed{\\dfrac{4}{6}}.", 0.1}};
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> batch) {
    std::vector<std::vector<double>> out(batch.size());
    for (std::size_t r = 0; r < batch.size(); ++r)
      for (std::size_t i = static_cast<std::size_t>(batch[r].first_new); i < batch[r].trajectory.size(); ++i) {
        const auto it = final_score.find(batch[r].trajectory.text(i));
        out[r].push_back(it == final_score.end() ? 0.5 : it->second);
      }
    return out;
  }
  std::string name() const { return "scripted-scores"; }
};

/// The math task with voting by raw text: shows what voting by value changes.
struct TextKeyTask : math::MathTask {
  std::string canonicalize(std::string_view a) const { return std::string(a); }
};

std::optional<SearchResult> run_bon(const auto& task, Voting voting, Scoring scoring) {
  const std::vector<Problem> problems{{"cake", "What fraction of the cake is left?", "\\frac{1}{2}"}};
  ScriptedSolutions gen;
  ScriptedScores ver;
  BestOfNParams p;
  p.n = 7;
  p.voting = voting;
  p.scoring = scoring;
  p.aggregation = Aggregation::Last;
  auto rs = best_of_n(std::span<const Problem>(problems), task, gen, ver, p, 1);
  REQUIRE(rs.size() == 1);
  REQUIRE(rs[0].candidates.size() == 7);
  return rs[0];
}

}  // namespace

TEST_CASE("math end to end: majority and weighted voting merge equivalent answers") {
  const math::MathTask task;
  const TextKeyTask by_text;
  // Majority: 4 votes for 1/2 in four forms against 3 for 2/3 in two forms.
  const auto maj = run_bon(task, Voting::Majority, Scoring::None);
  REQUIRE(maj->answer.has_value());
  CHECK(task.canonicalize(*maj->answer) == task.canonicalize("0.5"));
  CHECK(maj->correct == std::optional<bool>(true));
  // Voting by raw text: "\frac{2}{3}" (2 votes) beats every single form of 1/2.
  const auto maj_text = run_bon(by_text, Voting::Majority, Scoring::None);
  CHECK(maj_text->answer == std::optional<std::string>("\\frac{2}{3}"));
  CHECK(maj_text->correct == std::optional<bool>(false));
  // Weighted: 1/2 sums 4 x 0.7 = 2.8; 2/3 sums 0.9 + 0.9 + 0.1 = 1.9.
  const auto w = run_bon(task, Voting::Weighted, Scoring::Prm);
  REQUIRE(w->answer.has_value());
  CHECK(task.canonicalize(*w->answer) == task.canonicalize("1/2"));
  CHECK(w->correct == std::optional<bool>(true));
  const auto w_text = run_bon(by_text, Voting::Weighted, Scoring::Prm);  // 1.8 for "\frac{2}{3}" vs 0.7
  CHECK(w_text->answer == std::optional<std::string>("\\frac{2}{3}"));
  // Naive (the best single score) picks a wrong 0.9 sample: voting is what fixes it.
  const auto naive = run_bon(task, Voting::Naive, Scoring::Prm);
  CHECK(naive->correct == std::optional<bool>(false));
  // Every candidate's answer was extracted and graded against the gold by value.
  int correct = 0;
  for (const auto& c : maj->candidates) {
    REQUIRE(c.answer.has_value());
    correct += task.check(maj->problem, *c.answer) ? 1 : 0;
  }
  CHECK(correct == 4);
}

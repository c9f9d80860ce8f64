// qstar.math (the _qstar.math submodule): the math task's data loader, grader, extractor and
// the MathTask class that qstar.search(task=...) runs natively (no Python call per node,
// except a Python chat renderer's). Everything lives in include/qstar/tasks/math.
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "common.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/tasks/math/data.hpp"
#include "qstar/tasks/math/task.hpp"
#ifdef QSTAR_HAS_HF
#include "qstar/hf/chat_template.hpp"
#endif

namespace qstar::python {

using namespace pybind11::literals;

namespace {

math::GradeMode mode_from(const std::string& mode) { return math::grade_mode_from_string(mode, "mode"); }

std::vector<std::string> str_list(py::handle h, const char* what) {
  if (h.is_none()) return {};
  if (PyUnicode_Check(h.ptr())) return {h.cast<std::string>()};
  try {
    return h.cast<std::vector<std::string>>();
  } catch (const py::cast_error&) {
    throw InvalidArgument(fmt::format("{}: expected a str, a list of str or None", what));
  }
}

std::vector<int> int_list(py::handle h, const char* what) {
  if (h.is_none()) return {};
  if (PyLong_Check(h.ptr())) return {h.cast<int>()};
  try {
    return h.cast<std::vector<int>>();
  } catch (const py::cast_error&) {
    throw InvalidArgument(fmt::format("{}: expected an int, a list of int or None", what));
  }
}

/// The renderer of MathTask(chat_template=...): a callable(messages: list[dict]) -> str, or
/// (with qstar::hf) a path: a model folder or tokenizer_config.json, or a Jinja file.
math::ChatRenderer renderer_from(py::handle h) {
  if (h.is_none()) return {};
  if (PyCallable_Check(h.ptr())) {
    PyRef fn(py::reinterpret_borrow<py::object>(h));
    return [fn](const std::vector<math::ChatTurn>& turns) {
      py::gil_scoped_acquire gil;
      py::list msgs;
      for (const auto& t : turns) msgs.append(py::dict("role"_a = t.role, "content"_a = t.content));
      py::object r = fn.get()(msgs);
      if (!PyUnicode_Check(r.ptr()))
        throw PluginError(fmt::format("chat_template: the renderer returned a {}, expected a str", Py_TYPE(r.ptr())->tp_name));
      return r.cast<std::string>();
    };
  }
  if (py::isinstance<py::str>(h) || py::hasattr(h, "__fspath__")) {
#ifdef QSTAR_HAS_HF
    const std::string path = py::str(py::module_::import("os").attr("fspath")(h)).cast<std::string>();
    auto t = std::make_shared<const hf::ChatTemplate>(hf::ChatTemplate::from_path(path));
    return [t](const std::vector<math::ChatTurn>& turns) {
      std::vector<hf::ChatMessage> m;
      for (const auto& x : turns) m.push_back(hf::ChatMessage{x.role, x.content});
      return t->render(m, true);
    };
#else
    throw InvalidArgument("chat_template: this qstar was built without qstar::hf; pass a callable(messages) -> str");
#endif
  }
  throw InvalidArgument(fmt::format("chat_template: expected None, a path or a callable(messages) -> str, got a {}",
                                    Py_TYPE(h.ptr())->tp_name));
}

std::optional<std::string> extract_steps(const math::MathTask& t, const std::vector<std::string>& steps) {
  Tree tree;
  NodeId cur = Tree::root();
  for (const auto& s : steps) cur = tree.add_child(cur, Step{s, {}, 0.0, 0, FinishReason::StepEnd});
  return t.extract_answer(tree.trajectory(cur));
}

}  // namespace

void bind_math(py::module_& m) {
  py::module_ mm = m.def_submodule("math", "The math word-problem task: data, exact grader, extractor, MathTask.");
  mm.def(
      "load",
      [](const std::string& path, py::object question_field, const std::string& answer_field, py::handle ranks,
         std::size_t limit, py::handle level, py::handle subject, bool require_answer) {
        math::DataParams p;
        if (!question_field.is_none()) p.question_field = question_field.cast<std::string>();
        p.answer_field = answer_field;
        p.ranks = ranks_from(ranks);
        p.limit = limit;
        p.levels = int_list(level, "level");
        p.subjects = str_list(subject, "subject");
        p.require_answer = require_answer;
        return math::load_jsonl(path, p);
      },
      "path"_a, "question_field"_a = py::none(), "answer_field"_a = "answer", "ranks"_a = py::none(), "limit"_a = 0,
      "level"_a = py::none(), "subject"_a = py::none(), "require_answer"_a = false);
  mm.def(
      "check",
      [](const std::string& gold, const std::string& answer, const std::string& mode) {
        const auto md = mode_from(mode);
        py::gil_scoped_release release;
        return math::answers_equal(gold, answer, md);
      },
      "gold"_a, "answer"_a, "mode"_a = "lenient",
      "Whether the answer equals the gold answer: mode 'lenient' (Qwen2.5-Math-like, the default) or 'strict' "
      "(PRM800K-like).");
  mm.def(
      "extract", [](const std::string& text) { return math::extract_answer(text); }, "text"_a,
      "The final answer of a whole solution: the last brace-matched \\boxed{}/\\fbox{}, else after 'The answer is', "
      "else after '####', else None.");
  mm.def(
      "canonical_key", [](const std::string& answer) { return math::canonical_key(answer); }, "answer"_a,
      "The voting key: the value when the answer evaluates (\\frac12, 0.5 and 1/2 share it), else the normalised text.");
  mm.def(
      "normalize", [](const std::string& answer) { return math::normalize_answer(answer); }, "answer"_a,
      "The answer's text without units, \\left/\\right, \\text{}, $, 'x =' and spaces.");
  mm.def("instruction_preset", &math::instruction_preset, "name"_a,
         "The instruction of a preset: 'boxed', 'answer-is' or 'none'.");

  py::class_<math::MathTask>(mm, "MathTask",
                             "The math task for qstar.search(task=...): chat or plain prompts, paragraph steps, the "
                             "exact grader, voting by value.")
      .def(py::init([](py::object instruction, const std::string& system, const std::string& user_template,
                       const std::string& plain_template, const std::string& step_delimiter, const std::string& mode,
                       py::handle chat_template) {
             math::MathParams p;
             if (!instruction.is_none()) p.instruction = instruction.cast<std::string>();
             p.system = system;
             p.user_template = user_template;
             p.plain_template = plain_template;
             p.step_delimiter = step_delimiter;
             p.mode = mode_from(mode);
             return math::MathTask(p, renderer_from(chat_template));
           }),
           "instruction"_a = py::none(), "system"_a = "", "user_template"_a = math::MathParams{}.user_template,
           "plain_template"_a = math::MathParams{}.plain_template,
           "step_delimiter"_a = math::MathParams{}.step_delimiter, "mode"_a = "lenient",
           "chat_template"_a = py::none())
      .def_property_readonly("instruction", [](const math::MathTask& t) { return t.params().instruction; })
      .def_property_readonly("system", [](const math::MathTask& t) { return t.params().system; })
      .def_property_readonly("step_delimiter", [](const math::MathTask& t) { return t.params().step_delimiter; })
      .def_property_readonly("mode", [](const math::MathTask& t) {
        return t.params().mode == math::GradeMode::Strict ? "strict" : "lenient";
      })
      .def_property_readonly("uses_chat", &math::MathTask::uses_chat)
      .def("format", [](const math::MathTask& t, py::handle problem) { return t.format(problem_from(problem)); },
           "problem"_a, "The prompt of a problem.")
      .def(
          "messages",
          [](const math::MathTask& t, py::handle problem) {
            py::list out;
            for (const auto& x : t.messages(problem_from(problem)))
              out.append(py::dict("role"_a = x.role, "content"_a = x.content));
            return out;
          },
          "problem"_a, "The chat messages of a problem (system when set, user).")
      .def("is_terminal", [](const math::MathTask& t, const Step& s) { return t.is_terminal(s); }, "step"_a)
      .def("extract_answer", &extract_steps, "steps"_a,
           "The final answer of a trajectory (its steps joined by the step delimiter), else None.")
      .def("canonicalize", [](const math::MathTask& t, const std::string& a) { return t.canonicalize(a); }, "answer"_a)
      .def("check", [](const math::MathTask& t, py::handle problem, const std::string& a) {
             return t.check(problem_from(problem), a);
           }, "problem"_a, "answer"_a, "Whether the answer equals the problem's gold (False without a gold).")
      .def("__repr__", [](const math::MathTask& t) {
        return fmt::format("MathTask(mode='{}', chat={})", t.params().mode == math::GradeMode::Strict ? "strict" : "lenient",
                           t.uses_chat() ? "True" : "False");
      });
}

}  // namespace qstar::python

// Tasks by name, for the boundaries (`qstar --task NAME`, Python's `task="NAME"`): a
// type-erased Task (AnyTask) and, per task, its data loader, its problem parser and its own
// plug-ins (a task may ship a programmatic generator or an exact verifier). Nothing here
// knows any task: each task provides a TaskEntry (e.g. qstar/tasks/game24/entry.hpp) and the
// application adds it to a TaskRegistry.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/any.hpp"
#include "qstar/core/concepts.hpp"
#include "qstar/error.hpp"
#include "qstar/search/run.hpp"

namespace qstar {

/// Any Task (CheckedTask or not) behind one type. check() is false when the task has no
/// checker: ask has_check() to tell "wrong" from "unknown".
class AnyTask {
  struct Iface {
    virtual ~Iface() = default;
    virtual std::string format(const Problem&) const = 0;
    virtual bool is_terminal(const Step&) const = 0;
    virtual std::optional<std::string> extract_answer(const TrajectoryView&) const = 0;
    virtual std::string canonicalize(std::string_view) const = 0;
    virtual bool check(const Problem&, std::string_view) const = 0;
    virtual bool has_check() const = 0;
  };
  template <class T>
  struct Impl final : Iface {
    T t;
    explicit Impl(T x) : t(std::move(x)) {}
    std::string format(const Problem& p) const override { return std::string(t.format(p)); }
    bool is_terminal(const Step& s) const override { return t.is_terminal(s); }
    std::optional<std::string> extract_answer(const TrajectoryView& v) const override { return t.extract_answer(v); }
    std::string canonicalize(std::string_view a) const override { return std::string(t.canonicalize(a)); }
    bool check(const Problem& p, std::string_view a) const override {
      if constexpr (CheckedTask<T>) return t.check(p, a);
      else return false;
    }
    bool has_check() const override { return CheckedTask<T>; }
  };

 public:
  template <Task T>
    requires(!std::is_same_v<std::remove_cvref_t<T>, AnyTask>)
  AnyTask(T t)  // NOLINT(google-explicit-constructor): erasure is the point
      : impl_(std::make_shared<Impl<T>>(std::move(t))) {}
  std::string format(const Problem& p) const { return impl_->format(p); }
  bool is_terminal(const Step& s) const { return impl_->is_terminal(s); }
  std::optional<std::string> extract_answer(const TrajectoryView& v) const { return impl_->extract_answer(v); }
  std::string canonicalize(std::string_view a) const { return impl_->canonicalize(a); }
  bool check(const Problem& p, std::string_view a) const { return impl_->check(p, a); }
  bool has_check() const { return impl_->has_check(); }

 private:
  std::shared_ptr<const Iface> impl_;
};
static_assert(CheckedTask<AnyTask>);

/// The options a task's own plug-in reads, by flag name without "--" ("error-rate"), as typed.
using PluginOptions = std::map<std::string, std::string, std::less<>>;

/// A generator a task ships (e.g. a programmatic proposer).
struct TaskGenerator {
  /// The option names it reads; a boundary rejects them for other generators.
  std::vector<std::string> options;
  /// Builds it: the generator and the label reports show. InvalidArgument names the option.
  std::function<std::pair<AnyGenerator, std::string>(const PluginOptions&)> make;
};

/// A verifier a task ships (e.g. an exact oracle): its step and/or outcome halves.
struct TaskVerifier {
  std::function<VerifierSet()> make;
};

/// Everything a boundary needs to run a task by name.
struct TaskEntry {
  /// The name `--task` and `task=` use ("game24").
  std::string name;
  /// One line for help texts.
  std::string summary;
  /// The Task plug-in.
  std::function<AnyTask()> make_task;
  /// One problem from its text (`qstar solve TEXT`); ParseError naming the text when malformed.
  std::function<Problem(const std::string& text)> parse_problem;
  /// An example problem text for messages.
  std::string example;
  /// The text that starts a final step, for LM and HTTP generators that flag answers as they
  /// generate (their answer_marker); "" = none. `--answer-marker` overrides it.
  std::string answer_marker;
  /// The text that ends a step for LM and HTTP generators (their step_delimiter); "" = the
  /// generator's default ("\n"). `--delimiter` overrides it.
  std::string step_delimiter;
  /// The options the task's data loader reads besides the path and ranks (flag names without
  /// "--": "question-field", "limit"); a boundary passes the ones given to load_data and
  /// rejects them for tasks that do not list them.
  std::vector<std::string> data_options;
  /// The problems of a data file; `ranks` keeps those whose 1-based rank is in [first, last];
  /// `options` holds data_options given (empty when the task lists none). IoError when
  /// unreadable, ParseError naming path:line when malformed, InvalidArgument naming the option
  /// when one is malformed.
  std::function<std::vector<Problem>(const std::string& path, std::optional<std::pair<int, int>> ranks,
                                     const PluginOptions& options)>
      load_data;
  /// The task with its prompts rendered as a chat (instruct models): `render` turns (role,
  /// content) messages into the prompt with the model's chat template and the generation
  /// prompt. Unset when the task's prompts are plain text only.
  std::function<AnyTask(std::function<std::string(const std::vector<std::pair<std::string, std::string>>&)> render)>
      make_chat_task;
  /// The grading modes `qstar task check --mode` accepts, the default first (empty when the
  /// task has no answer grader).
  std::vector<std::string> check_modes;
  /// Whether `answer` equals the reference answer `gold` under `mode` (one of check_modes), for
  /// `qstar task check` and evaluation pipelines; unset when the task grades no (gold, answer)
  /// pairs. Never throws on hostile answers (they are simply not equal).
  std::function<bool(std::string_view gold, std::string_view answer, std::string_view mode)> check_answer;
  /// The final answer of a whole solution text, for `qstar task extract`; unset when the task
  /// has no text-level extractor.
  std::function<std::optional<std::string>(std::string_view text)> extract_text;
  /// The data file used when none is given, relative to qstar's data directory ("" = none).
  std::string default_data;
  /// The task's own plug-ins by kind ("programmatic", "oracle").
  std::map<std::string, TaskGenerator, std::less<>> generators;
  std::map<std::string, TaskVerifier, std::less<>> verifiers;
};

/// Tasks by name, in the order they were added.
class TaskRegistry {
 public:
  /// InvalidArgument naming the task when the name is empty or taken.
  void add(TaskEntry e) {
    if (e.name.empty()) throw InvalidArgument("task: a task entry needs a name");
    if (find(e.name)) throw InvalidArgument(fmt::format("task: '{}' is registered twice", e.name));
    if (!e.make_task) throw InvalidArgument(fmt::format("task '{}': make_task is not set", e.name));
    entries_.push_back(std::move(e));
  }
  const TaskEntry* find(std::string_view name) const {
    for (const auto& e : entries_)
      if (e.name == name) return &e;
    return nullptr;
  }
  /// InvalidArgument "task: 'x' is not one of a, b" for an unknown name.
  const TaskEntry& at(std::string_view name) const {
    if (const auto* e = find(name)) return *e;
    throw InvalidArgument(fmt::format("task: '{}' is not one of {}", name, fmt::join(names(), ", ")));
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e.name);
    return out;
  }

 private:
  std::vector<TaskEntry> entries_;
};

}  // namespace qstar

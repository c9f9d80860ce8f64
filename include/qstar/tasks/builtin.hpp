// The tasks qstar ships, by name, for the boundaries: the qstar CLI (`--task NAME`) and the
// Python module (`task="NAME"`). The first one added is the default. Adding a task to both:
// include its entry header (qstar/tasks/<task>/entry.hpp) and add one line below.
#pragma once

#include "qstar/tasks/game24/entry.hpp"
#include "qstar/tasks/math/entry.hpp"
#include "qstar/tasks/registry.hpp"

namespace qstar {

/// The built-in tasks, in the order they were added (the first is the default).
inline const TaskRegistry& builtin_tasks() {
  static const TaskRegistry registry = [] {
    TaskRegistry r;
    r.add(game24::task_entry());  // the default
    r.add(math::task_entry());
    return r;
  }();
  return registry;
}

}  // namespace qstar

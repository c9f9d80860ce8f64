// Game of 24, the Tree of Thoughts benchmark (Yao et al. 2023, "Tree of Thoughts: Deliberate
// Problem Solving with Large Language Models"): combine four numbers 1-13 with + - * /, each
// used once, to make exactly 24. This header holds everything qstar needs for it: exact
// rational arithmetic, the ToT step format (`a op b = c (left: x y z)`, then
// `Answer: <expr> = 24`), an expression evaluator and canonicaliser, an exact solver, the
// Task plug-in, a programmatic generator that behaves like a (possibly weak) proposer, the
// oracle step/outcome verifiers, and the 24.csv loader.
//
// The umbrella header of the task: each part lives in include/qstar/tasks/game24/.
#pragma once

#include "qstar/tasks/game24/text.hpp"
#include "qstar/tasks/game24/rational.hpp"
#include "qstar/tasks/game24/steps.hpp"
#include "qstar/tasks/game24/expr.hpp"
#include "qstar/tasks/game24/solver.hpp"
#include "qstar/tasks/game24/task.hpp"
#include "qstar/tasks/game24/proposer.hpp"
#include "qstar/tasks/game24/oracle.hpp"
#include "qstar/tasks/game24/csv.hpp"

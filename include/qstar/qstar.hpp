// qstar: process-supervised search. The umbrella header: the core and every search
// (never the LibTorch backends).
#pragma once

#include "qstar/version.hpp"
#include "qstar/error.hpp"
#include "qstar/core/types.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/core/concepts.hpp"
#include "qstar/core/prompt.hpp"
#include "qstar/core/any.hpp"
#include "qstar/core/aggregate.hpp"
#include "qstar/core/voting.hpp"
#include "qstar/core/budget.hpp"
#include "qstar/core/stats.hpp"
#include "qstar/core/rng.hpp"
#include "qstar/core/json.hpp"
#include "qstar/core/trace.hpp"
#include "qstar/search/search.hpp"

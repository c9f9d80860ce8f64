// Synthetic Game of 24 training data: moved to qstar/tasks/game24/synth.hpp (this header
// stays so existing includes keep working).
#pragma once

#include "qstar/tasks/game24.hpp"
#include "qstar/tasks/game24/synth.hpp"

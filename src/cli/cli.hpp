// The qstar command line now lives in src/app (app/cli.hpp); this header stays for the
// includes that still name it. src/cli/train.cpp is the `train` subcommand's body.
#pragma once

#include "app/cli.hpp"

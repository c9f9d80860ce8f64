// Precompiled header for the LibTorch sources (never included by public headers).
#pragma once
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

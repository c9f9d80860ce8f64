// qstar version macros.
#pragma once

#define QSTAR_VERSION_MAJOR 0
#define QSTAR_VERSION_MINOR 1
#define QSTAR_VERSION_PATCH 0
#define QSTAR_VERSION_STRING "0.1.0"

namespace qstar {
inline constexpr int version_major = QSTAR_VERSION_MAJOR;
inline constexpr int version_minor = QSTAR_VERSION_MINOR;
inline constexpr int version_patch = QSTAR_VERSION_PATCH;
inline constexpr const char* version_string = QSTAR_VERSION_STRING;
}  // namespace qstar

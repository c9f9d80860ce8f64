// qstar error hierarchy. Every error qstar throws derives from qstar::Error, and its
// message names the field, file or plug-in at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace qstar {

/// Base class of every exception qstar throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A parameter failed validation. The message starts with the field name.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// Malformed input text or file (puzzle, step, JSON, trace). The message names the
/// input and, where known, the position.
class ParseError : public Error {
 public:
  using Error::Error;
};

/// A file could not be opened, read or written. The message names the file.
class IoError : public Error {
 public:
  using Error::Error;
};

/// A plug-in (generator, verifier) broke its contract: it threw, returned the wrong number
/// of results, returned NaN/inf or a score outside [0,1], or a step longer than allowed.
/// The message names the plug-in.
class PluginError : public Error {
 public:
  using Error::Error;
};

}  // namespace qstar

#pragma once
// The exceptions lamia throws. Each maps to one Python exception at the
// binding boundary: ValueError -> ValueError, IndexError -> IndexError,
// IOError -> OSError. Loader errors carry the file, line and field at fault.
#include <cstddef>
#include <stdexcept>
#include <string>

namespace lamia {

/// Base of every lamia exception.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A value (argument, field, file content) is not what was expected.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// An index or id is out of range or unknown.
class IndexError : public Error {
 public:
  using Error::Error;
};

/// A file or directory cannot be opened, read or written.
class IOError : public Error {
 public:
  using Error::Error;
};

/// Where in an input file a problem was found. line is 1-based; 0 means "whole file".
struct SourceLocation {
  std::string file;
  std::size_t line = 0;
  std::string field;

  /// "file:line: field 'x'" (parts that are unknown are left out).
  std::string str() const;
};

/// A malformed input file: the message starts with the file, line and field.
class ParseError : public ValueError {
 public:
  ParseError(SourceLocation where, const std::string& what);
  const SourceLocation& where() const noexcept { return where_; }
  /// The message without the location prefix.
  const std::string& reason() const noexcept { return reason_; }

 private:
  SourceLocation where_;
  std::string reason_;
};

}  // namespace lamia

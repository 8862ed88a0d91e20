#pragma once

#include "util/error.hpp"

#include <string>

namespace contractor::yaml {

// A position in a text file, both counted from 1 as editors and compilers show them.
struct Mark {
    int line = 1;
    int column = 1;
};

// An error at a place in a file the user wrote (spec or config). Printed as
// `FILE:LINE:COLUMN: message`, the form editors and CI log viewers link to the source.
class SourceError : public UsageError {
public:
    SourceError(const std::string& file, Mark mark, const std::string& message,
                std::string hint = {})
        : UsageError(file + ":" + std::to_string(mark.line) + ":" + std::to_string(mark.column) +
                         ": " + message,
                     std::move(hint)),
          mark_(mark) {}

    // Where in the file the problem is.
    Mark mark() const { return mark_; }

private:
    Mark mark_;
};

} // namespace contractor::yaml

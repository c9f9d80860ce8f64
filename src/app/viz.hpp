// `qstar viz` (viz.cpp): the search-tree viewer page from trace records. Declared here (not in
// app.hpp) so that tests can build pages without the command line.
#pragma once

#include <cstddef>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/core/json.hpp"
#include "qstar/core/trace.hpp"

namespace qstar::cli {

/// The largest trace file `qstar viz` reads (bytes), and the most nodes one page holds.
inline constexpr std::size_t kVizMaxBytes = std::size_t{256} << 20;
inline constexpr std::size_t kVizMaxNodes = 200000;

/// JSON text made safe inside a <script> element: every '<', '>' and '&' (which JSON only has
/// inside strings) written as \u003c, \u003e, \u0026, so no "</script>" or "<!--" survives.
std::string viz_escape_json(std::string_view json);
/// One record as the page reads it: the trace's JSON without the token lists.
json::Value viz_record(const TraceRecord& rec);
/// The whole page: the viewer template with the records as its data block.
std::string viz_page(std::span<const TraceRecord> recs);
/// `qstar viz ...` (args[0] is "viz").
int cmd_viz(const std::vector<std::string>& args, std::ostream& out);

}  // namespace qstar::cli

// `qstar viz TREE.jsonl [-o tree.html] [--problem K]`: the search trees of a JSONL trace
// (`qstar solve --tree`, `qstar bench --trace`, qstar.write_trace) as one self-contained HTML
// page (src/app/viz/viewer.html, embedded at build time; docs/viz.md). The trace is read with
// the checked trace reader (errors name the file and line), after a size check.
#include <filesystem>
#include <system_error>

#include "app/app.hpp"
#include "app/viz.hpp"
#include "qstar/core/trace.hpp"
#include "qstar_viz_template.hpp"  // generated from src/app/viz/viewer.html (cmake/embed_file.cmake)

namespace qstar::cli {

namespace {

constexpr std::string_view kVizHelp = R"(usage: qstar viz TREE.jsonl [-o tree.html] [--problem K]

Writes the search trees of a JSONL trace (qstar solve --tree, qstar bench --trace) as one
self-contained HTML page (no network): nodes coloured by score, sized by visits, ends marked
correct or wrong, the chosen path highlighted, step text on hover, collapsible subtrees, a
problem selector and a summary.

  -o, --output FILE   the page (default: TREE with .html for .jsonl)
  --problem K         only record K (0-based line index among the records) or the record
                      whose problem id is K (default: every record, with a selector)
)";

/// The default output: TREE.jsonl -> TREE.html; any other name gets ".html" appended.
std::string default_output(const std::string& in) {
  std::filesystem::path p(in);
  if (p.extension() == ".jsonl") return p.replace_extension(".html").string();
  return in + ".html";
}

/// The record --problem names: an index first, then an exact problem id.
std::size_t pick_record(const std::vector<TraceRecord>& recs, const std::string& k, const std::string& file) {
  std::size_t idx = 0;
  const auto r = std::from_chars(k.data(), k.data() + k.size(), idx);
  if (r.ec == std::errc() && r.ptr == k.data() + k.size()) {
    if (idx < recs.size()) return idx;
    throw UsageError(fmt::format("--problem: {} is out of range: {} has {} record(s)", k, file, recs.size()));
  }
  for (std::size_t i = 0; i < recs.size(); ++i)
    if (recs[i].problem.id == k) return i;
  throw UsageError(fmt::format("--problem: no record of {} has problem id '{}'", file, k));
}

}  // namespace

std::string viz_escape_json(std::string_view json) {
  std::string out;
  out.reserve(json.size() + json.size() / 16);
  for (char c : json) {
    switch (c) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

json::Value viz_record(const TraceRecord& rec) {
  json::Value v = trace_to_json(rec);
  for (auto& [key, value] : v.as_object()) {
    if (key != "nodes") continue;
    for (auto& node : value.as_array()) {
      auto& members = node.as_object();
      std::erase_if(members, [](const auto& m) {
        return m.first == "tokens" || m.first == "token_logprobs" || m.first == "token_entropies";
      });
    }
  }
  return v;
}

std::string viz_page(std::span<const TraceRecord> recs) {
  json::Value data = json::Value::array();
  for (const auto& r : recs) data.push_back(viz_record(r));
  const std::string_view tpl = viz_template();
  constexpr std::string_view kSlot = "__QSTAR_DATA__";
  const auto at = tpl.find(kSlot);
  if (at == std::string_view::npos || tpl.find(kSlot, at + 1) != std::string_view::npos)
    throw Error("viz: the embedded viewer template has no single __QSTAR_DATA__ slot");
  std::string page;
  const std::string blob = viz_escape_json(json::dump(data));
  page.reserve(tpl.size() + blob.size());
  page.append(tpl.substr(0, at));
  page.append(blob);
  page.append(tpl.substr(at + kSlot.size()));
  return page;
}

int cmd_viz(const std::vector<std::string>& args, std::ostream& out) {
  std::vector<std::string> norm;  // "-o FILE" is --output FILE
  for (const auto& a : args) norm.push_back(a == "-o" ? "--output" : a);
  const Args a(norm, 1, "viz");
  if (a.has("help")) {
    out << kVizHelp;
    return 0;
  }
  if (a.positional().size() != 1)
    throw UsageError(a.positional().empty() ? "viz: give the trace file, e.g. qstar viz tree.jsonl -o tree.html"
                                            : "viz: give exactly one trace file");
  const std::string in = a.positional()[0];
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(in, ec);
  if (ec) throw IoError(fmt::format("{}: cannot read the trace file ({})", in, ec.message()));
  if (bytes > kVizMaxBytes)
    throw UsageError(fmt::format("{}: {} bytes is over the viewer's limit of {} MiB (pick one problem: qstar "
                                 "bench --trace writes one line per problem)",
                                 in, bytes, kVizMaxBytes >> 20));
  std::vector<TraceRecord> recs = read_trace_file(in);  // ParseError "<file>:<line>: ..."
  if (recs.empty()) throw UsageError(fmt::format("{}: no trace records (an empty file?)", in));
  if (auto k = a.get("problem")) {
    const std::size_t i = pick_record(recs, *k, in);
    std::vector<TraceRecord> one;
    one.push_back(std::move(recs[i]));
    recs = std::move(one);
  }
  std::size_t nodes = 0;
  for (const auto& r : recs) nodes += r.tree.size();
  if (nodes > kVizMaxNodes)
    throw UsageError(fmt::format("{}: {} nodes in all is over the viewer's limit of {} (pick one problem with "
                                 "--problem K)",
                                 in, nodes, kVizMaxNodes));
  const std::string path = a.get("output").value_or(default_output(in));
  write_file(path, viz_page(recs), "output");
  out << fmt::format("wrote {} ({} problem(s), {} nodes)\n", path, recs.size(), nodes);
  return 0;
}

}  // namespace qstar::cli

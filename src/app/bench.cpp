// `qstar bench`: searches over a data split of the task, a table of solve rates and costs
// per method and budget, and optionally JSON and a trace.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <limits>

#include "app/app.hpp"
#include "qstar/version.hpp"

namespace qstar::cli {

namespace {

/// Parses a rank range: "901-1000" or "5" (a single rank), 1 <= first <= last.
std::pair<int, int> parse_ranks(std::string_view text) {
  auto fail = [&]() -> std::pair<int, int> {
    throw UsageError(fmt::format("--ranks: expected \"N\" or \"A-B\" with 1 <= A <= B, got \"{}\"", text));
  };
  auto trim = [](std::string_view t) {
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    return t;
  };
  auto number = [&](std::string_view t) -> std::optional<int> {
    t = trim(t);
    int v = 0;
    const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || r.ec != std::errc() || r.ptr != t.data() + t.size() || v < 1) return std::nullopt;
    return v;
  };
  const std::string_view s = trim(text);
  const auto dash = s.find('-');
  const auto lo = number(s.substr(0, dash));
  const auto hi = dash == std::string_view::npos ? lo : number(s.substr(dash + 1));
  if (!lo || !hi || *lo > *hi) return fail();
  return {*lo, *hi};
}

}  // namespace

namespace {

class Progress {
 public:
  Progress(std::ostream& err, std::size_t total, std::string label)
      : err_(err), total_(total), label_(std::move(label)), t0_(std::chrono::steady_clock::now()) {}
  void update(std::size_t done) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double eta = done ? el / static_cast<double>(done) * static_cast<double>(total_ - done) : 0.0;
    if (progress_tty()) {
      constexpr int W = 30;
      const int fill = total_ ? static_cast<int>(W * done / total_) : W;
      err_ << fmt::format("\r{:<28} [{}{}] {:>4}/{} {:6.1f}s ETA {:6.1f}s", label_, std::string(fill, '#'),
                          std::string(W - fill, '.'), done, total_, el, eta)
           << std::flush;
      if (done == total_) err_ << "\n";
    } else {
      // Plain lines: about every 25% and at the end.
      const std::size_t step = std::max<std::size_t>(1, total_ / 4);
      if (done == total_ || done / step != last_ / step)
        err_ << fmt::format("[bench] {}: {}/{} problems, {:.1f}s elapsed, ETA {:.1f}s\n", label_, done, total_, el,
                            eta);
    }
    last_ = done;
  }

 private:
  std::ostream& err_;
  std::size_t total_;
  std::string label_;
  std::chrono::steady_clock::time_point t0_;
  std::size_t last_ = 0;
};

struct Row {
  std::string method, algo;
  int n = 0;
  int solved = 0, total = 0;
  double gen_tokens = 0, ver_tokens = 0, gen_calls = 0, ver_calls = 0, wall = 0, nodes = 0;
  double gen_steps = 0, ver_steps = 0;
  double elapsed = 0;  // wall clock of the whole row (all chunks), seconds
};

std::string method_label(const std::string& algo, const SearchParams& sp, const Plugins& pl) {
  std::string extra;
  if (auto* p = std::get_if<BestOfNParams>(&sp)) {
    const bool none = !pl.ver || p->scoring == Scoring::None;
    extra = none ? "majority" : fmt::format("{}", to_string(p->voting));
    if (!none && p->scoring == Scoring::Orm) extra += ",orm";
  } else if (auto* p = std::get_if<BeamParams>(&sp)) {
    extra = fmt::format("M={}", p->width);
  } else if (auto* p = std::get_if<DvtsParams>(&sp)) {
    extra = fmt::format("M={}", p->width);
  } else if (auto* p = std::get_if<BestFirstParams>(&sp)) {
    extra = fmt::format("K={},B={}", p->expand_k, p->pops_per_iteration);
  } else if (auto* p = std::get_if<MctsParams>(&sp)) {
    extra = fmt::format("{},B={}", p->selection == SelectionRule::Puct ? "puct" : "uct", p->leaves_per_iteration);
  } else if (auto* p = std::get_if<AdaptiveBestOfNParams>(&sp)) {
    const bool none = !pl.ver || p->scoring == Scoring::None;
    extra = fmt::format("{},{}>={},R={}", none ? "majority" : to_string(p->voting), to_string(p->rule), p->threshold,
                        p->round_size);
  } else if (auto* p = std::get_if<DeepConfParams>(&sp)) {
    extra = fmt::format("{},w={},keep={}{}", to_string(p->confidence), p->window, p->keep_fraction,
                        p->online ? ",online" : "");
  }
  return fmt::format("{}({})+{}", algo, extra, pl.ver ? pl.ver_label : "none");
}

}  // namespace

/// A method label with every model path (lm:PATH, prm:PATH, after "+" or "=" or ",")
/// shortened to the folder's name: "beam(M=4)+prm:/x/models/prm" -> "beam(M=4)+prm:prm".
std::string short_method(const std::string& label) {
  std::string out;
  std::size_t i = 0;
  while (i < label.size()) {
    const bool start = i == 0 || label[i - 1] == '+' || label[i - 1] == '=' || label[i - 1] == ',';
    const std::string_view rest(label.data() + i, label.size() - i);
    const std::size_t kind = rest.starts_with("lm:") ? 3 : rest.starts_with("prm:") ? 4 : 0;
    if (!start || kind == 0) {
      out += label[i++];
      continue;
    }
    std::size_t end = label.find_first_of(",+", i + kind);
    if (end == std::string::npos) end = label.size();
    std::string path = label.substr(i + kind, end - i - kind);
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    const auto slash = path.rfind('/');
    out += label.substr(i, kind) + (slash == std::string::npos || slash + 1 == path.size() ? path : path.substr(slash + 1));
    i = end;
  }
  return out;
}

int cmd_bench(const Args& a, std::ostream& out, std::ostream& err) {
  std::vector<std::string> algos;
  for (const auto& s : split_list(a.get("algo").value_or("beam"))) algos.push_back(canonical_algo(s));
  a.check_algorithms(algos);
  const TaskEntry& entry = task_of(a);
  if (!a.positional().empty()) throw UsageError(fmt::format("bench: unexpected argument '{}'", a.positional()[0]));
  auto data = a.get("data");
  if (!data)
    throw UsageError(entry.default_data.empty() ? std::string("bench: --data FILE is required")
                                                : fmt::format("bench: --data FILE is required (e.g. --data data/{})",
                                                              entry.default_data));
  std::optional<std::pair<int, int>> ranks;
  if (auto r = a.get("ranks")) ranks = parse_ranks(*r);
  std::vector<int> ns;
  for (const auto& s : split_list(a.get("n").value_or("1,4,16,64"))) ns.push_back(parse_int<int>("n", s, 1, 1 << 20));
  std::size_t chunk = 25;
  if (auto v = a.get("chunk")) chunk = parse_int<std::size_t>("chunk", *v, 1, 1 << 20);
  const std::uint64_t seed = get_seed(a);
  // Build and validate every configuration before running anything.
  std::vector<std::pair<std::string, SearchParams>> configs;
  for (const auto& algo : algos)
    for (int n : ns) configs.emplace_back(algo, make_params(algo, n, a));
  Plugins pl = make_plugins(a, entry, &err);
  for (const auto& config : configs) check_plugins(config.second, pl);
  const std::vector<Problem> problems = load_task_data(a, entry, *data, ranks);
  const AnyTask task = make_task(a, entry, &err);
  if (problems.empty()) throw UsageError(fmt::format("--data {}: no problems in the selected ranks", *data));
  const auto trace_path = a.get("trace");
  std::ofstream trace;
  if (trace_path) {
    trace.open(*trace_path, std::ios::binary);
    if (!trace) throw UsageError(fmt::format("--trace: cannot open '{}' for writing", *trace_path));
  }

  std::vector<Row> rows;
  for (auto [algo, sp] : configs) {
    common(sp).keep_tree = trace_path.has_value();
    Row row;
    row.algo = algo;
    row.method = method_label(algo, sp, pl);
    row.n = budget(sp);
    row.total = static_cast<int>(problems.size());
    Progress prog(err, problems.size(), fmt::format("{} n={}", row.method, row.n));
    const auto row_t0 = std::chrono::steady_clock::now();
    for (std::size_t lo = 0; lo < problems.size(); lo += chunk) {
      const std::size_t hi = std::min(problems.size(), lo + chunk);
      auto rs = run_search(std::span<const Problem>(problems).subspan(lo, hi - lo), task, pl, sp, seed);
      for (const auto& r : rs) {
        row.solved += r.correct.value_or(false) ? 1 : 0;
        row.gen_tokens += static_cast<double>(r.stats.generated_tokens);
        row.ver_tokens += static_cast<double>(r.stats.verifier_tokens);
        row.gen_calls += static_cast<double>(r.stats.generator_calls);
        row.ver_calls += static_cast<double>(r.stats.verifier_calls);
        row.nodes += static_cast<double>(r.stats.nodes);
        row.gen_steps += static_cast<double>(r.stats.generated_steps);
        row.ver_steps += static_cast<double>(r.stats.verified_steps);
        row.wall += r.stats.wall_seconds();
        if (trace_path) {
          trace << trace_line(r, task) << "\n";
        }
      }
      prog.update(hi);
    }
    row.elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - row_t0).count();
    const double P = static_cast<double>(row.total);
    row.gen_steps /= P;
    row.ver_steps /= P;
    row.gen_tokens /= P;
    row.ver_tokens /= P;
    row.gen_calls /= P;
    row.ver_calls /= P;
    row.nodes /= P;
    row.wall /= P;
    rows.push_back(row);
  }

  out << fmt::format("qstar bench: {} problems from {}{}, generator {}, seed {}\n", problems.size(), *data,
                     ranks ? fmt::format(" (ranks {}-{})", ranks->first, ranks->second) : "", pl.gen_label, seed);
  // The table: short method names (a model folder's name, not its path), every column as
  // wide as its content.
  std::vector<std::vector<std::string>> cells = {
      {"method", "n", "solved", "rate", "gen tok/pb", "ver tok/pb", "ver calls", "wall s/pb"}};
  for (const auto& r : rows)
    cells.push_back({short_method(r.method), fmt::format("{}", r.n), fmt::format("{}/{}", r.solved, r.total),
                     fmt::format("{:.1f}%", 100.0 * r.solved / r.total), fmt::format("{:.1f}", r.gen_tokens),
                     fmt::format("{:.1f}", r.ver_tokens), fmt::format("{:.1f}", r.ver_calls),
                     fmt::format("{:.6f}", r.wall)});
  std::vector<std::size_t> width(cells[0].size(), 0);
  for (const auto& row : cells)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  const auto print_row = [&](const std::vector<std::string>& row) {
    out << "|";
    for (std::size_t c = 0; c < row.size(); ++c)
      out << (c == 0 ? fmt::format(" {:<{}} |", row[c], width[c]) : fmt::format(" {:>{}} |", row[c], width[c]));
    out << "\n";
  };
  print_row(cells[0]);
  out << "|";
  for (std::size_t c = 0; c < width.size(); ++c)
    out << (c == 0 ? std::string(width[c] + 2, '-') : std::string(width[c] + 1, '-') + ":") << "|";
  out << "\n";
  for (std::size_t i = 1; i < cells.size(); ++i) print_row(cells[i]);

  if (auto path = a.get("json")) {
    json::Value o = json::Value::object();
    json::Value res = json::Value::array();
    for (const auto& r : rows) {
      json::Value x = json::Value::object();
      x.set("method", r.method);
      x.set("algo", r.algo);
      x.set("n", r.n);
      x.set("solved", r.solved);
      x.set("total", r.total);
      x.set("solve_rate", static_cast<double>(r.solved) / r.total);
      x.set("generated_tokens_per_problem", r.gen_tokens);
      x.set("verifier_tokens_per_problem", r.ver_tokens);
      x.set("wall_s_per_problem", r.wall);
      x.set("generator_calls_per_problem", r.gen_calls);
      x.set("verifier_calls_per_problem", r.ver_calls);
      x.set("nodes_per_problem", r.nodes);
      x.set("generated_steps_per_problem", r.gen_steps);
      x.set("verified_steps_per_problem", r.ver_steps);
      x.set("elapsed_s", r.elapsed);
      res.push_back(std::move(x));
    }
    o.set("results", std::move(res));
    json::Value cfg = json::Value::object();
    cfg.set("data", *data);
    cfg.set("ranks", ranks ? json::Value(fmt::format("{}-{}", ranks->first, ranks->second)) : json::Value());
    cfg.set("problems", static_cast<std::int64_t>(problems.size()));
    cfg.set("generator", pl.gen_label);
    cfg.set("verifier", pl.ver_label);
    cfg.set("seed", static_cast<std::int64_t>(seed));
    json::Value al = json::Value::array();
    for (const auto& s : algos) al.push_back(s);
    cfg.set("algos", std::move(al));
    json::Value nv = json::Value::array();
    for (int n : ns) nv.push_back(n);
    cfg.set("n", std::move(nv));
    cfg.set("qstar_version", QSTAR_VERSION_STRING);
    o.set("config", std::move(cfg));
    write_file(*path, json::dump(o) + "\n", "json");
  }
  return 0;
}

}  // namespace qstar::cli

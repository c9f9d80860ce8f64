// `qstar bench`: searches over a data split of the task, a table of solve rates and costs
// per method and budget, and optionally JSON and a trace.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <tuple>

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
  } else if (auto* p = std::get_if<ParticleFilterParams>(&sp)) {
    extra = fmt::format("T={},ess<{}", p->temperature, p->resample_threshold);
  } else if (auto* p = std::get_if<RebaseParams>(&sp)) {
    extra = fmt::format("T={}", p->temperature);
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

/// One finished problem of one configuration: what the table and the JSON sum, and what a
/// --results line stores.
struct Record {
  std::optional<std::string> answer;
  std::optional<bool> correct;
  std::int64_t gen_tokens = 0, ver_tokens = 0, gen_calls = 0, ver_calls = 0, nodes = 0;
  std::int64_t gen_steps = 0, ver_steps = 0;
  double wall = 0;  // the search's wall clock, seconds
  std::string stop;
};

Record record_of(const SearchResult& r) {
  Record x;
  x.answer = r.answer;
  x.correct = r.correct;
  x.gen_tokens = r.stats.generated_tokens;
  x.ver_tokens = r.stats.verifier_tokens;
  x.gen_calls = r.stats.generator_calls;
  x.ver_calls = r.stats.verifier_calls;
  x.nodes = static_cast<std::int64_t>(r.stats.nodes);
  x.gen_steps = r.stats.generated_steps;
  x.ver_steps = r.stats.verified_steps;
  x.wall = r.stats.wall_seconds();
  x.stop = to_string(r.stop);
  return x;
}

void add(Row& row, const Record& r) {
  row.solved += r.correct.value_or(false) ? 1 : 0;
  row.gen_tokens += static_cast<double>(r.gen_tokens);
  row.ver_tokens += static_cast<double>(r.ver_tokens);
  row.gen_calls += static_cast<double>(r.gen_calls);
  row.ver_calls += static_cast<double>(r.ver_calls);
  row.nodes += static_cast<double>(r.nodes);
  row.gen_steps += static_cast<double>(r.gen_steps);
  row.ver_steps += static_cast<double>(r.ver_steps);
  row.wall += r.wall;
}

/// `--results FILE.jsonl`: a header line (the run's flags), then one line per finished
/// problem per configuration, appended and flushed as each chunk ends. With --resume the
/// file is read back (bounded; a malformed line is an error naming FILE:LINE, a truncated
/// last line, which a killed run can leave, is dropped) and its problems are not searched
/// again. The header must match this run's flags: the configurations and the data are then
/// the same, and each problem's seed derives from its id and text (the engine's problem
/// key), so a resumed run's table equals an uninterrupted one's.
class ResultsFile {
 public:
  static constexpr std::uintmax_t kMaxBytes = 256u << 20;  // the whole file
  static constexpr std::size_t kMaxLine = 1u << 20;        // one line

  ResultsFile(std::string path, bool resume, json::Value header, const std::vector<Problem>& problems,
              std::ostream& err)
      : path_(std::move(path)), problems_(problems) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool exists = fs::exists(path_, ec);
    const std::uintmax_t size = exists ? fs::file_size(path_, ec) : 0;
    if (ec) throw UsageError(fmt::format("--results {}: {}", path_, ec.message()));
    if (size > 0 && !resume)
      throw UsageError(fmt::format("--results {}: the file exists and is not empty; pass --resume to continue it, "
                                   "or remove it",
                                   path_));
    // A file cut inside its header line (a kill at the start) holds nothing: start it again.
    const bool fresh = size == 0 || !load(header, size, err);
    out_.open(path_, std::ios::binary | std::ios::app);
    if (!out_) throw UsageError(fmt::format("--results: cannot open '{}' for writing", path_));
    if (fresh) {
      out_ << json::dump(header) << "\n";
      out_.flush();
    }
  }

  /// The stored record of problem `index` under configuration (method, n), if any.
  const Record* done(const std::string& method, int n, std::size_t index) const {
    const auto it = done_.find({method, n, index});
    return it == done_.end() ? nullptr : &it->second;
  }
  std::size_t size() const { return done_.size(); }

  void append(const std::string& method, const std::string& algo, int n, std::size_t index, const Record& r) {
    json::Value x = json::Value::object();
    x.set("method", method);
    x.set("algo", algo);
    x.set("n", n);
    x.set("index", static_cast<std::int64_t>(index));
    x.set("id", problems_[index].id);
    x.set("answer", r.answer ? json::Value(*r.answer) : json::Value());
    x.set("correct", r.correct ? json::Value(*r.correct) : json::Value());
    x.set("generated_tokens", r.gen_tokens);
    x.set("verifier_tokens", r.ver_tokens);
    x.set("generator_calls", r.gen_calls);
    x.set("verifier_calls", r.ver_calls);
    x.set("nodes", r.nodes);
    x.set("generated_steps", r.gen_steps);
    x.set("verified_steps", r.ver_steps);
    x.set("wall_s", r.wall);
    x.set("stop", r.stop);
    out_ << json::dump(x) << "\n";
  }
  /// Flushes the lines appended so far (called as each chunk ends).
  void flush() {
    out_.flush();
    if (!out_) throw IoError(fmt::format("--results {}: write failed", path_));
  }

 private:
  using Key = std::tuple<std::string, int, std::size_t>;

  /// Reads the file back; false when it holds no complete line (it is then emptied).
  bool load(const json::Value& header, std::uintmax_t size, std::ostream& err) {
    if (size > kMaxBytes)
      throw UsageError(fmt::format("--results {}: {} bytes, more than the {} a results file may have", path_, size,
                                   kMaxBytes));
    std::ifstream in(path_, std::ios::binary);
    std::string text(static_cast<std::size_t>(size), '\0');
    if (!in.read(text.data(), static_cast<std::streamsize>(size)))
      throw UsageError(fmt::format("--results {}: cannot read the file", path_));
    // A last line without its newline was cut by a killed run: drop it (its problem is
    // searched again) and cut it from the file before appending.
    std::size_t keep = text.size();
    if (text.back() != '\n') {
      const auto nl = text.rfind('\n');
      keep = nl == std::string::npos ? 0 : nl + 1;
      err << fmt::format("[bench] --results {}: dropped a truncated last line ({} bytes)\n", path_,
                         text.size() - keep);
    }
    std::size_t line_no = 0;
    for (std::size_t at = 0; at < keep;) {
      const std::size_t nl = text.find('\n', at);
      const std::string_view line(text.data() + at, nl - at);
      at = nl + 1;
      ++line_no;
      const std::string where = fmt::format("--results {}:{}", path_, line_no);
      if (line.size() > kMaxLine) throw UsageError(fmt::format("{}: a line of more than {} bytes", where, kMaxLine));
      json::Value v;
      try {
        v = json::parse(line, where);
        if (line_no == 1) {
          check_header(v, header, where);
        } else {
          read_record(v, where);
        }
      } catch (const ParseError& e) {
        throw UsageError(fmt::format("{}: {}", where, e.what()));
      }
    }
    if (keep < text.size()) {
      std::error_code ec;
      std::filesystem::resize_file(path_, keep, ec);
      if (ec) throw IoError(fmt::format("--results {}: cannot cut its truncated last line: {}", path_, ec.message()));
    }
    return line_no > 0;
  }

  void check_header(const json::Value& v, const json::Value& header, const std::string& where) const {
    if (!v.is_object() || !v.contains("qstar_bench_results"))
      throw UsageError(fmt::format("{}: not a qstar bench results file (no header line)", where));
    const auto& mine = header.get_object("flags");
    const auto& theirs = v.get_object("flags");
    const auto value = [](const json::Object& o, const std::string& k) -> std::optional<std::string> {
      for (const auto& m : o)
        if (m.first == k) return m.second.is_string() ? m.second.as_string() : json::dump(m.second);
      return std::nullopt;
    };
    const auto shown = [](const std::string& k, const std::optional<std::string>& s) {
      return s ? fmt::format("--{} {}", k, *s) : fmt::format("no --{}", k);
    };
    std::set<std::string> names;
    for (const auto& m : mine) names.insert(m.first);
    for (const auto& m : theirs) names.insert(m.first);
    for (const auto& k : names) {
      const auto a = value(theirs, k), b = value(mine, k);
      if (a != b)
        throw UsageError(fmt::format("{}: the file was written with {}, this run has {}: --resume continues the "
                                     "same command only",
                                     where, shown(k, a), shown(k, b)));
    }
    if (v.get_int("problems") != header.get_int("problems"))
      throw UsageError(fmt::format("{}: the file's run had {} problems, this run has {} (did the data change?)",
                                   where, v.get_int("problems"), header.get_int("problems")));
  }

  void read_record(const json::Value& v, const std::string& where) {
    if (!v.is_object()) throw UsageError(fmt::format("{}: expected a JSON object", where));
    const std::int64_t index = v.get_int("index");
    if (index < 0 || static_cast<std::size_t>(index) >= problems_.size())
      throw UsageError(fmt::format("{}: index {} is out of range (the run has {} problems)", where, index,
                                   problems_.size()));
    const auto i = static_cast<std::size_t>(index);
    if (v.get_string("id") != problems_[i].id)
      throw UsageError(fmt::format("{}: problem {} has id '{}' in the file and '{}' in the data (did the data "
                                   "change?)",
                                   where, i, v.get_string("id"), problems_[i].id));
    const std::int64_t n = v.get_int("n");
    if (n < 1 || n > (1 << 20)) throw UsageError(fmt::format("{}: n {} is out of range", where, n));
    Record r;
    const auto& answer = v.at("answer");
    if (!answer.is_null()) r.answer = answer.as_string();
    const auto& correct = v.at("correct");
    if (!correct.is_null()) r.correct = correct.as_bool();
    r.gen_tokens = v.get_int("generated_tokens");
    r.ver_tokens = v.get_int("verifier_tokens");
    r.gen_calls = v.get_int("generator_calls");
    r.ver_calls = v.get_int("verifier_calls");
    r.nodes = v.get_int("nodes");
    r.gen_steps = v.get_int("generated_steps");
    r.ver_steps = v.get_int("verified_steps");
    r.wall = v.get_double("wall_s");
    r.stop = v.get_string("stop");
    Key key{v.get_string("method"), static_cast<int>(n), i};
    if (!done_.emplace(std::move(key), std::move(r)).second)
      throw UsageError(fmt::format("{}: a second line for problem {} of {} n={}", where, i, v.get_string("method"),
                                   n));
  }

  std::string path_;
  const std::vector<Problem>& problems_;
  std::map<Key, Record> done_;
  std::ofstream out_;
};

/// The header of a --results file: every flag of the run but those that do not change its
/// results (the output files and the chunk size), and the number of problems.
json::Value results_header(const Args& a, std::size_t problems) {
  json::Value flags = json::Value::object();
  for (const auto& [k, v] : a.flags())
    if (k != "results" && k != "resume" && k != "json" && k != "trace" && k != "chunk") flags.set(k, v);
  json::Value h = json::Value::object();
  h.set("qstar_bench_results", 1);
  h.set("qstar_version", QSTAR_VERSION_STRING);
  h.set("flags", std::move(flags));
  h.set("problems", static_cast<std::int64_t>(problems));
  return h;
}

/// One configuration over every problem: the problems not in `results` searched `chunk` at a
/// time (their lines appended to `results` and `trace` as each chunk ends), the rest read
/// back from `results`; the row sums every problem's record in problem order.
Row bench_config(const std::string& algo, SearchParams sp, const std::vector<Problem>& problems, const AnyTask& task,
                 Plugins& pl, std::uint64_t seed, std::size_t chunk, ResultsFile* results, std::ofstream* trace,
                 std::ostream& err) {
  common(sp).keep_tree = trace != nullptr;
  Row row;
  row.algo = algo;
  row.method = method_label(algo, sp, pl);
  row.n = budget(sp);
  row.total = static_cast<int>(problems.size());
  std::vector<std::optional<Record>> recs(problems.size());
  std::vector<Problem> todo;
  std::vector<std::size_t> todo_index;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    if (const Record* r = results ? results->done(row.method, row.n, i) : nullptr) {
      recs[i] = *r;
    } else {
      todo.push_back(problems[i]);
      todo_index.push_back(i);
    }
  }
  Progress prog(err, problems.size(), fmt::format("{} n={}", row.method, row.n));
  const std::size_t skipped = problems.size() - todo.size();
  if (skipped > 0) prog.update(skipped);
  const auto row_t0 = std::chrono::steady_clock::now();
  for (std::size_t lo = 0; lo < todo.size(); lo += chunk) {
    const std::size_t hi = std::min(todo.size(), lo + chunk);
    auto rs = run_search(std::span<const Problem>(todo).subspan(lo, hi - lo), task, pl, sp, seed);
    for (std::size_t j = 0; j < rs.size(); ++j) {
      const std::size_t i = todo_index[lo + j];
      recs[i] = record_of(rs[j]);
      if (trace) *trace << trace_line(rs[j], task) << "\n";
      if (results) results->append(row.method, algo, row.n, i, *recs[i]);
    }
    if (trace) trace->flush();
    if (results) results->flush();
    prog.update(skipped + hi);
  }
  for (const auto& r : recs) add(row, *r);
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
  return row;
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
  const auto results_path = a.get("results");
  const bool resume = a.has("resume");
  if (resume && !results_path) throw UsageError("--resume needs --results FILE.jsonl (the file to continue)");
  const auto trace_path = a.get("trace");
  std::ofstream trace;
  if (trace_path) {
    // Resuming appends: the trace then holds the problems searched by each run.
    trace.open(*trace_path, std::ios::binary | (resume ? std::ios::app : std::ios::trunc));
    if (!trace) throw UsageError(fmt::format("--trace: cannot open '{}' for writing", *trace_path));
  }
  std::optional<ResultsFile> results;
  if (results_path) results.emplace(*results_path, resume, results_header(a, problems.size()), problems, err);
  if (results && results->size() > 0)
    err << fmt::format("[bench] --results {}: {} finished problems read back; searching the rest\n", *results_path,
                       results->size());

  std::vector<Row> rows;
  for (const auto& [algo, sp] : configs)
    rows.push_back(bench_config(algo, sp, problems, task, pl, seed, chunk, results ? &*results : nullptr,
                                trace_path ? &trace : nullptr, err));

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

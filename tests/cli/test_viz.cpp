// `qstar viz`: the page holds the trace's records (token lists dropped) in a data block that
// no text of the trace can close; bad input is one line and exit 2 naming the file or flag.
// The page in a real browser: tests/viz/test_viz_browser.py (ctest viz_browser).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <qstar/core/json.hpp>
#include <qstar/core/trace.hpp>

#include "../cli_run.hpp"
#include "app/viz.hpp"

namespace {

using cli_test::run;
namespace json = qstar::json;

std::string tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("qstar_viz_" + name)).string();
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

/// The JSON text between the data block's tags, with the page's \u003c etc. still in it.
std::string data_block(const std::string& page) {
  const std::string open = "<script type=\"application/json\" id=\"qstar-data\">";
  const auto a = page.find(open);
  REQUIRE(a != std::string::npos);
  const auto b = page.find("</script>", a);
  REQUIRE(b != std::string::npos);
  return page.substr(a + open.size(), b - a - open.size());
}

/// A trace record's JSON without the nodes' token lists: what the page should hold.
json::Value without_tokens(const std::string& line) {
  json::Value v = json::parse(line);
  for (auto& [k, nodes] : v.as_object())
    if (k == "nodes")
      for (auto& n : nodes.as_array())
        std::erase_if(n.as_object(), [](const auto& m) {
          return m.first == "tokens" || m.first == "token_logprobs" || m.first == "token_entropies";
        });
  return v;
}

}  // namespace

TEST_CASE("viz writes one page holding every record of a solve trace") {
  const auto a = tmp("a.jsonl"), b = tmp("b.jsonl"), both = tmp("both.jsonl"), page = tmp("both.html");
  REQUIRE(run({"solve", "4 5 6 10", "--algo", "beam", "--tree", a, "--generator", "programmatic", "--verifier", "oracle"}).code == 0);
  REQUIRE(run({"solve", "1 2 4 7", "--algo", "mcts", "--tree", b, "--generator", "programmatic", "--verifier", "oracle"}).code == 0);
  const std::string la = slurp(a), lb = slurp(b);
  spit(both, la + lb);
  const auto r = run({"viz", both, "-o", page});
  REQUIRE(r.code == 0);
  CHECK(r.out.find(page) != std::string::npos);
  const std::string html = slurp(page);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("__QSTAR_DATA__") == std::string::npos);
  // Self-contained: no URL the browser would fetch.
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("href=") == std::string::npos);
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  const json::Value data = json::parse(data_block(html));
  REQUIRE(data.is_array());
  REQUIRE(data.size() == 2);
  CHECK(data.at(0) == without_tokens(la.substr(0, la.size() - 1)));
  CHECK(data.at(1) == without_tokens(lb.substr(0, lb.size() - 1)));
  // The chosen leaf of a solved beam search is on the page and carries the answer.
  const json::Value& rec = data.at(0);
  REQUIRE(rec.contains("chosen_node"));
  const auto leaf = static_cast<std::size_t>(rec.get_int("chosen_node"));
  CHECK(rec.at("nodes").at(leaf).at("answer") == rec.at("answer"));
  CHECK(rec.at("stats").get_int("generated_tokens") > 0);

  // --problem K: one record, by index or by problem id; the default output name.
  REQUIRE(run({"viz", both, "--problem", "1"}).code == 0);
  const json::Value one = json::parse(data_block(slurp(tmp("both.html"))));
  REQUIRE(one.size() == 1);
  CHECK(one.at(0) == data.at(1));
  REQUIRE(run({"viz", both, "--problem", "cli", "--output", page}).code == 0);
  CHECK(json::parse(data_block(slurp(page))).at(0) == data.at(0));
}

TEST_CASE("viz: no text of the trace can end the data block or open a comment") {
  qstar::Tree t;
  const auto c = t.add_child(0, qstar::Step{.text = "</script><script>alert(1)</script> <!-- & \u2028 >", .tokens = {1}, .num_tokens = 1});
  qstar::TraceRecord rec;
  rec.problem = qstar::Problem{"p</script>", "</SCRIPT> <b>&amp;</b>", std::nullopt};
  rec.tree = t;
  rec.answer = "</script>";
  rec.stop_reason = "completed";
  rec.extras.chosen_node = c;
  const std::string page = qstar::cli::viz_page({&rec, 1});
  const std::string tpl = qstar::cli::viz_page({});  // the template with an empty list
  CHECK(count(page, "</script") == count(tpl, "</script"));
  CHECK(count(page, "</SCRIPT") == 0);
  CHECK(count(page, "<!--") == count(tpl, "<!--"));
  const std::string blob = data_block(page);
  CHECK(blob.find_first_of("<>&") == std::string::npos);
  // The escapes are JSON's: the block parses to the record's own text.
  const json::Value v = json::parse(blob);
  CHECK(v.at(0).at("problem").get_string("text") == "</SCRIPT> <b>&amp;</b>");
  CHECK(v.at(0).at("nodes").at(1).get_string("text") == "</script><script>alert(1)</script> <!-- & \u2028 >");
  CHECK(qstar::cli::viz_escape_json(R"({"a":"<&>"})") == R"({"a":"\u003c\u0026\u003e"})");
}

TEST_CASE("viz: bad input is one line naming the file or flag, exit 2") {
  const auto good = tmp("good.jsonl");
  REQUIRE(run({"solve", "4 5 6 10", "--algo", "beam", "--tree", good, "--generator", "programmatic", "--verifier", "oracle"}).code == 0);
  const std::string line = slurp(good);
  auto expect_error = [](const std::vector<std::string>& args, const std::string& needle) {
    const auto r = run(args);
    CHECK(r.code == 2);
    CHECK_MESSAGE(r.err.find(needle) != std::string::npos, r.err);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  };
  expect_error({"viz"}, "give the trace file");
  expect_error({"viz", good, good}, "exactly one trace file");
  expect_error({"viz", tmp("missing.jsonl")}, "missing.jsonl: cannot read");
  const auto empty = tmp("empty.jsonl");
  spit(empty, "\n\n");
  expect_error({"viz", empty}, "no trace records");
  const auto bad = tmp("bad.jsonl");
  spit(bad, line + "{\"problem\": 3}\n");
  expect_error({"viz", bad}, "bad.jsonl:2");
  spit(bad, line.substr(0, line.size() / 2) + "\n");
  expect_error({"viz", bad}, "bad.jsonl:1");
  std::string wrong_leaf = line;
  wrong_leaf.replace(wrong_leaf.find("\"chosen_node\":"), 14, "\"chosen_node\":99999,\"x\":");
  spit(bad, wrong_leaf);
  expect_error({"viz", bad}, "chosen_node");
  expect_error({"viz", good, "--problem", "5"}, "--problem: 5 is out of range");
  expect_error({"viz", good, "--problem", "nope"}, "no record of");
  expect_error({"viz", good, "--bogus"}, "unknown flag --bogus");
  expect_error({"viz", good, "-o", tmp("no-such-dir/x.html")}, "--output: cannot open");
  CHECK(run({"viz", "--help"}).out.find("usage: qstar viz") != std::string::npos);
}

// Post-processors: the single-sequence template of TemplateProcessing, BertProcessing and
// RobertaProcessing (ByteLevel adds nothing), Sequence.
#include <fmt/format.h>

#include "internal.hpp"
#include "qstar/error.hpp"

namespace qstar::hf::detail {

namespace {

Template parse_template_processing(const Reader& r, const Value& v, std::string_view path) {
  // special_tokens: name -> {"id": name, "ids": [...], "tokens": [...]}
  std::unordered_map<std::string, std::vector<std::int32_t>> specials;
  if (const Value* st = r.opt(v, "special_tokens")) {
    const std::string sp = join_path(path, "special_tokens");
    r.object(*st, sp);
    for (const auto& [name, entry] : st->as_object()) {
      const std::string ep = join_path(sp, json_quote(name));
      const std::string ip = join_path(ep, "ids");
      const auto& ids = r.array(r.req(entry, "ids", ep), ip);
      std::vector<std::int32_t> out;
      for (std::size_t i = 0; i < ids.size(); ++i)
        out.push_back(r.token_id(ids[i], index_path(ip, i)));
      specials[name] = std::move(out);
    }
  }
  const std::string tp = join_path(path, "single");
  const auto& items = r.array(r.req(v, "single", path), tp);
  Template t;
  bool has_a = false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string ip = index_path(tp, i);
    const Value& it = items[i];
    std::string seq_id, special;
    bool is_seq = false;
    if (it.is_string()) {
      // "$A", "$B:1", "$0", "<s>", "<s>:0"
      std::string s = it.as_string();
      if (const auto colon = s.rfind(':');
          colon != std::string::npos && colon + 1 < s.size() &&
          s.find_first_not_of("0123456789", colon + 1) == std::string::npos)
        s.resize(colon);
      if (!s.empty() && s[0] == '$') {
        is_seq = true;
        seq_id = s.size() == 1 ? "A" : s.substr(1);
      } else {
        special = s;
      }
    } else if (const Value* sq = it.find("Sequence")) {
      is_seq = true;
      seq_id = r.str(r.req(*sq, "id", join_path(ip, "Sequence")), join_path(ip, "Sequence.id"));
    } else if (const Value* sk = it.find("SpecialToken")) {
      special =
          r.str(r.req(*sk, "id", join_path(ip, "SpecialToken")), join_path(ip, "SpecialToken.id"));
    } else {
      r.fail(ip, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
    if (is_seq) {
      if (seq_id != "A" && seq_id != "0")
        r.fail(ip, fmt::format("the single template can only use sequence A, not {}",
                               json_quote(seq_id)));
      has_a = true;
      t.push_back({true, {}});
    } else {
      const auto f = specials.find(special);
      if (f == specials.end())
        r.fail(ip, fmt::format("special token {} is not in {}", json_quote(special),
                               join_path(path, "special_tokens")));
      t.push_back({false, f->second});
    }
  }
  if (!has_a) r.fail(tp, "the template has no sequence $A");
  return t;
}

}  // namespace

void parse_post_processor(const Reader& r, const Value& v, std::string_view path,
                          std::vector<Template>& out) {
  r.object(v, path);
  const std::string& type = r.type_of(v, path);
  if (type == "Sequence") {
    const std::string p = join_path(path, "processors");
    const auto& items = r.array(r.req(v, "processors", path), p);
    for (std::size_t i = 0; i < items.size(); ++i)
      parse_post_processor(r, items[i], index_path(p, i), out);
  } else if (type == "ByteLevel") {
    // offsets only
  } else if (type == "TemplateProcessing") {
    out.push_back(parse_template_processing(r, v, path));
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto pair = [&](std::string_view key) {
      const std::string p = join_path(path, key);
      const auto& a = r.array(r.req(v, key, path), p);
      if (a.size() != 2) r.fail(p, "expected [token, id]");
      r.str(a[0], index_path(p, 0));
      return r.token_id(a[1], index_path(p, 1));
    };
    const std::int32_t cls = pair("cls");
    const std::int32_t sep = pair("sep");
    out.push_back(Template{{false, {cls}}, {true, {}}, {false, {sep}}});
  } else {
    r.unsupported(path, type);
  }
}

}  // namespace qstar::hf::detail

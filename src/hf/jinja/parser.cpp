// The parser: tokens -> Node tree, with jinja2's operator precedence (filters and tests bind
// tighter than unary minus and `not`; `a if b else c` lowest).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "hf/jinja/internal.hpp"

namespace qstar::hf::jinja {
namespace {

struct Parser {
  std::vector<Token> toks;
  const std::string& name;
  int max_depth;
  std::size_t p = 0;
  int depth = 0;

  struct DepthGuard {
    Parser& ps;
    explicit DepthGuard(Parser& x) : ps(x) {
      if (++ps.depth > ps.max_depth)
        ps.error(fmt::format("nesting deeper than max_depth {}", ps.max_depth));
    }
    ~DepthGuard() { --ps.depth; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;
  };

  const Token& cur() const { return toks[p]; }
  [[noreturn]] void error(const std::string& msg) const {
    throw ParseError(fmt::format("{}:{}: {}", name, cur().line, msg));
  }
  std::string describe(const Token& t) const {
    switch (t.t) {
      case T::Eof: return "end of template";
      case T::Data: return "template text";
      case T::VarBegin: return "'{{'";
      case T::VarEnd: return "'}}'";
      case T::BlockBegin: return "'{%'";
      case T::BlockEnd: return "'%}'";
      case T::String: return "a string";
      default: return fmt::format("'{}'", t.text);
    }
  }
  bool is_op(const char* op) const { return cur().t == T::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().t == T::Name && cur().text == n; }
  void expect_op(const char* op) {
    if (!is_op(op)) error(fmt::format("expected '{}', got {}", op, describe(cur())));
    ++p;
  }
  void expect_name(const char* n) {
    if (!is_name(n)) error(fmt::format("expected '{}', got {}", n, describe(cur())));
    ++p;
  }
  std::string take_name() {
    if (cur().t != T::Name) error(fmt::format("expected a name, got {}", describe(cur())));
    return toks[p++].text;
  }
  void expect_block_end() {
    if (cur().t != T::BlockEnd) error(fmt::format("expected '%}}', got {}", describe(cur())));
    ++p;
  }
  // Sets n's height from its kids; a chain (a + b + c ..., x|f|g ..., a.b.c ...) deeper than
  // 4 * max_depth is refused, so evaluating, checking and destroying the tree cannot overflow the stack.
  NodePtr tall(NodePtr n) {
    int h = 0;
    for (const auto& k : n->kids)
      if (k) h = std::max(h, k->height);
    n->height = h + 1;
    if (n->height > 4 * max_depth)
      throw ParseError(fmt::format("{}:{}: expression nested deeper than {} (4 * max_depth)", name, n->line, 4 * max_depth));
    return n;
  }
  NodePtr node(N kind, int line) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->line = line;
    return n;
  }

  // ---- expressions ------------------------------------------------------------------------
  NodePtr expr() {
    DepthGuard g(*this);
    const int line = cur().line;
    NodePtr a = or_expr();
    while (is_name("if")) {
      ++p;
      auto c = node(N::Cond, line);
      NodePtr cond = or_expr();
      NodePtr other;
      if (is_name("else")) {
        ++p;
        other = expr();
      }
      c->kids.push_back(std::move(a));
      c->kids.push_back(std::move(cond));
      c->kids.push_back(std::move(other));
      a = tall(std::move(c));
    }
    return a;
  }
  NodePtr binary(const char* op, NodePtr l, NodePtr r, int line) {
    auto n = node(N::Binary, line);
    n->str = op;
    n->kids.push_back(std::move(l));
    n->kids.push_back(std::move(r));
    return tall(std::move(n));
  }
  NodePtr or_expr() {
    NodePtr a = and_expr();
    while (is_name("or")) {
      const int line = cur().line;
      ++p;
      a = binary("or", std::move(a), and_expr(), line);
    }
    return a;
  }
  NodePtr and_expr() {
    NodePtr a = not_expr();
    while (is_name("and")) {
      const int line = cur().line;
      ++p;
      a = binary("and", std::move(a), not_expr(), line);
    }
    return a;
  }
  NodePtr not_expr() {
    if (is_name("not")) {
      DepthGuard g(*this);
      auto n = node(N::Unary, cur().line);
      ++p;
      n->str = "not";
      n->kids.push_back(not_expr());
      return tall(std::move(n));
    }
    return compare();
  }
  NodePtr compare() {
    const int line = cur().line;
    NodePtr a = math1();
    NodePtr c;
    while (true) {
      std::string op;
      if (cur().t == T::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                               cur().text == ">" || cur().text == "<=" || cur().text == ">=")) {
        op = cur().text;
        ++p;
      } else if (is_name("in")) {
        op = "in";
        ++p;
      } else if (is_name("not") && p + 1 < toks.size() && toks[p + 1].t == T::Name && toks[p + 1].text == "in") {
        op = "notin";
        p += 2;
      } else {
        break;
      }
      if (!c) {
        c = node(N::Compare, line);
        c->kids.push_back(std::move(a));
      }
      c->strs.push_back(op);
      c->kids.push_back(math1());
    }
    return c ? tall(std::move(c)) : std::move(a);
  }
  NodePtr math1() {
    NodePtr a = concat();
    while (is_op("+") || is_op("-")) {
      const int line = cur().line;
      const char* op = is_op("+") ? "+" : "-";
      ++p;
      a = binary(op, std::move(a), concat(), line);
    }
    return a;
  }
  NodePtr concat() {
    NodePtr a = math2();
    while (is_op("~")) {
      const int line = cur().line;
      ++p;
      a = binary("~", std::move(a), math2(), line);
    }
    return a;
  }
  NodePtr math2() {
    NodePtr a = pow_expr();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const int line = cur().line;
      const std::string op = cur().text;
      ++p;
      a = binary(op == "*" ? "*" : op == "/" ? "/" : op == "//" ? "//" : "%", std::move(a), pow_expr(), line);
    }
    return a;
  }
  NodePtr pow_expr() {
    NodePtr a = unary(true);
    while (is_op("**")) {
      const int line = cur().line;
      ++p;
      a = binary("**", std::move(a), unary(true), line);
    }
    return a;
  }
  NodePtr unary(bool with_filter) {
    DepthGuard g(*this);
    NodePtr n;
    if (is_op("-") || is_op("+")) {
      auto u = node(N::Unary, cur().line);
      u->str = cur().text;
      ++p;
      u->kids.push_back(unary(false));
      n = tall(std::move(u));
    } else {
      n = primary();
    }
    n = postfix(std::move(n));
    if (with_filter) n = filter_expr(std::move(n));
    return n;
  }
  NodePtr primary() {
    const Token& t = cur();
    const int line = t.line;
    if (t.t == T::Name) {
      const std::string& s = t.text;
      ++p;
      auto n = node(N::Lit, line);
      if (s == "true" || s == "True") { n->lit = Value::boolean(true); return n; }
      if (s == "false" || s == "False") { n->lit = Value::boolean(false); return n; }
      if (s == "none" || s == "None") { n->lit = Value::none(); return n; }
      n->kind = N::Name;
      n->str = s;
      return n;
    }
    if (t.t == T::String) {
      std::string s;
      while (cur().t == T::String) s += toks[p++].text;
      auto n = node(N::Lit, line);
      n->lit = Value::str(std::move(s));
      return n;
    }
    if (t.t == T::Int) {
      std::int64_t v = 0;
      const auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
      if (r.ec != std::errc() || r.ptr != t.text.data() + t.text.size())
        error(fmt::format("integer literal {} out of range", t.text));
      ++p;
      auto n = node(N::Lit, line);
      n->lit = Value::integer(v);
      return n;
    }
    if (t.t == T::Float) {
      const double v = std::strtod(t.text.c_str(), nullptr);
      ++p;
      auto n = node(N::Lit, line);
      n->lit = Value::number(v);
      return n;
    }
    if (is_op("(")) {
      ++p;
      if (is_op(")")) {  // empty tuple
        ++p;
        return node(N::TupleLit, line);
      }
      NodePtr first = expr();
      if (is_op(")")) {
        ++p;
        return first;
      }
      auto tup = node(N::TupleLit, line);
      tup->kids.push_back(std::move(first));
      while (is_op(",")) {
        ++p;
        if (is_op(")")) break;
        tup->kids.push_back(expr());
      }
      expect_op(")");
      return tall(std::move(tup));
    }
    if (is_op("[")) {
      ++p;
      auto lst = node(N::ListLit, line);
      while (!is_op("]")) {
        if (!lst->kids.empty()) expect_op(",");
        if (is_op("]")) break;
        lst->kids.push_back(expr());
      }
      ++p;
      return tall(std::move(lst));
    }
    if (is_op("{")) {
      ++p;
      auto d = node(N::DictLit, line);
      while (!is_op("}")) {
        if (!d->kids.empty()) expect_op(",");
        if (is_op("}")) break;
        d->kids.push_back(expr());
        expect_op(":");
        d->kids.push_back(expr());
      }
      ++p;
      return tall(std::move(d));
    }
    error(fmt::format("unexpected {}", describe(t)));
  }
  // (args, kw=value) after '(' was seen; fills kids from index 1.
  void call_args(Node& n) {
    expect_op("(");
    bool kw_seen = false;
    while (!is_op(")")) {
      if (n.kids.size() > 1) expect_op(",");
      if (is_op(")")) break;
      if (cur().t == T::Name && p + 1 < toks.size() && toks[p + 1].t == T::Op && toks[p + 1].text == "=") {
        n.strs.push_back(toks[p].text);
        p += 2;
        n.kids.push_back(expr());
        kw_seen = true;
      } else {
        if (kw_seen) error("positional argument after keyword argument");
        n.kids.push_back(expr());
        ++n.npos;
      }
    }
    ++p;
  }
  NodePtr postfix(NodePtr n) {
    while (true) {
      const int line = cur().line;
      if (is_op(".")) {
        ++p;
        auto a = node(N::Attr, line);
        if (cur().t == T::Name) {
          a->str = take_name();
          a->kids.push_back(std::move(n));
        } else if (cur().t == T::Int) {  // x.0 is x[0]
          a->kind = N::Item;
          a->kids.push_back(std::move(n));
          auto idx = node(N::Lit, line);
          idx->lit = Value::integer(std::strtoll(cur().text.c_str(), nullptr, 10));
          ++p;
          a->kids.push_back(std::move(idx));
        } else {
          error(fmt::format("expected an attribute name after '.', got {}", describe(cur())));
        }
        n = tall(std::move(a));
      } else if (is_op("[")) {
        ++p;
        NodePtr parts[3];
        int colons = 0;
        while (true) {
          if (is_op(":")) {
            if (++colons > 2) error("too many ':' in a slice");
            ++p;
            continue;
          }
          if (is_op("]")) break;
          if (parts[colons]) error(fmt::format("expected ']' or ':', got {}", describe(cur())));
          parts[colons] = expr();
        }
        ++p;
        if (colons == 0) {
          if (!parts[0]) error("empty subscript");
          auto it = node(N::Item, line);
          it->kids.push_back(std::move(n));
          it->kids.push_back(std::move(parts[0]));
          n = tall(std::move(it));
        } else {
          auto s = node(N::Slice, line);
          s->kids.push_back(std::move(n));
          for (auto& part : parts) s->kids.push_back(std::move(part));
          n = tall(std::move(s));
        }
      } else if (is_op("(")) {
        auto c = node(N::Call, line);
        c->kids.push_back(std::move(n));
        call_args(*c);
        n = tall(std::move(c));
      } else {
        return n;
      }
    }
  }
  NodePtr filter_expr(NodePtr n) {
    while (true) {
      const int line = cur().line;
      if (is_op("|")) {
        ++p;
        auto f = node(N::Filter, line);
        f->str = take_name();
        f->kids.push_back(std::move(n));
        if (is_op("(")) call_args(*f);
        n = tall(std::move(f));
      } else if (is_name("is")) {
        ++p;
        auto t = node(N::Test, line);
        if (is_name("not")) {
          ++p;
          t->flag = true;
        }
        t->str = take_name();
        t->kids.push_back(std::move(n));
        if (is_op("(")) {
          call_args(*t);
        } else if ((cur().t == T::Name || cur().t == T::String || cur().t == T::Int ||
                    cur().t == T::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          NodePtr arg = primary();
          arg = postfix(std::move(arg));
          t->kids.push_back(std::move(arg));
          t->npos = 1;
        }
        n = tall(std::move(t));
      } else {
        return n;
      }
    }
  }

  // ---- statements -------------------------------------------------------------------------
  // Parses statements until a block tag whose name is in `ends`; leaves p at that name.
  NodePtr body(std::initializer_list<const char*> ends, const char* opener, int open_line) {
    DepthGuard g(*this);
    auto blk = node(N::Block, cur().line);
    while (true) {
      const Token& t = cur();
      if (t.t == T::Eof) {
        if (ends.size() == 0) return blk;
        throw ParseError(fmt::format("{}:{}: unexpected end of template: '{}' opened on line {} is not closed",
                                     name, t.line, opener, open_line));
      }
      if (t.t == T::Data) {
        auto n = node(N::Text, t.line);
        n->str = t.text;
        ++p;
        blk->kids.push_back(std::move(n));
        continue;
      }
      if (t.t == T::VarBegin) {
        ++p;
        auto n = node(N::Output, t.line);
        n->kids.push_back(expr());
        if (cur().t != T::VarEnd) error(fmt::format("expected '}}}}', got {}", describe(cur())));
        ++p;
        blk->kids.push_back(std::move(n));
        continue;
      }
      if (t.t != T::BlockBegin) error(fmt::format("unexpected {}", describe(t)));
      const Token& kw = toks[p + 1];
      if (kw.t != T::Name) {
        ++p;
        error(fmt::format("expected a tag name, got {}", describe(kw)));
      }
      for (const char* e : ends)
        if (kw.text == e) {
          ++p;
          return blk;
        }
      p += 2;
      blk->kids.push_back(statement(kw));
    }
  }
  NodePtr statement(const Token& kw) {
    const int line = kw.line;
    const std::string& w = kw.text;
    if (w == "if") {
      auto n = node(N::If, line);
      n->kids.push_back(expr());
      expect_block_end();
      n->kids.push_back(body({"elif", "else", "endif"}, "if", line));
      ++n->npos;
      while (true) {
        const std::string tag = toks[p].text;
        ++p;
        if (tag == "elif") {
          n->kids.push_back(expr());
          expect_block_end();
          n->kids.push_back(body({"elif", "else", "endif"}, "if", line));
          ++n->npos;
        } else if (tag == "else") {
          expect_block_end();
          n->kids.push_back(body({"endif"}, "if", line));
          ++p;
          expect_block_end();
          return n;
        } else {
          expect_block_end();
          return n;
        }
      }
    }
    if (w == "for") {
      auto n = node(N::For, line);
      n->strs.push_back(take_name());
      while (is_op(",")) {
        ++p;
        n->strs.push_back(take_name());
      }
      expect_name("in");
      // The iterable: no `if` ternary here (it starts the loop filter).
      n->kids.push_back(or_expr());
      if (is_name("if")) {
        ++p;
        n->kids.push_back(expr());
      } else {
        n->kids.push_back(nullptr);
      }
      if (is_name("recursive")) error("recursive loops are not supported");
      expect_block_end();
      n->kids.push_back(body({"else", "endfor"}, "for", line));
      if (toks[p].text == "else") {
        ++p;
        expect_block_end();
        n->kids.push_back(body({"endfor"}, "for", line));
      } else {
        n->kids.push_back(nullptr);
      }
      ++p;
      expect_block_end();
      return n;
    }
    if (w == "set") {
      std::vector<std::string> targets{take_name()};
      bool attr = false;
      if (is_op(".")) {
        ++p;
        targets.push_back(take_name());
        attr = true;
      } else {
        while (is_op(",")) {
          ++p;
          targets.push_back(take_name());
        }
      }
      if (cur().t == T::BlockEnd && !attr && targets.size() == 1) {
        ++p;
        auto n = node(N::SetBlock, line);
        n->strs = std::move(targets);
        n->kids.push_back(body({"endset"}, "set", line));
        ++p;
        expect_block_end();
        return n;
      }
      expect_op("=");
      auto n = node(N::Set, line);
      n->strs = std::move(targets);
      n->flag = attr;
      NodePtr v = expr();
      if (is_op(",")) {  // {% set a, b = 1, 2 %}
        auto tup = node(N::TupleLit, line);
        tup->kids.push_back(std::move(v));
        while (is_op(",")) {
          ++p;
          tup->kids.push_back(expr());
        }
        v = std::move(tup);
      }
      n->kids.push_back(std::move(v));
      expect_block_end();
      return n;
    }
    if (w == "macro") {
      auto n = node(N::Macro, line);
      n->str = take_name();
      expect_op("(");
      std::vector<NodePtr> defaults;
      while (!is_op(")")) {
        if (!n->strs.empty()) expect_op(",");
        if (is_op(")")) break;
        n->strs.push_back(take_name());
        if (is_op("=")) {
          ++p;
          defaults.push_back(expr());
        } else {
          defaults.push_back(nullptr);
        }
      }
      ++p;
      expect_block_end();
      n->kids.push_back(body({"endmacro"}, "macro", line));
      ++p;
      if (cur().t == T::Name && cur().text == n->str) ++p;
      expect_block_end();
      for (auto& d : defaults) n->kids.push_back(std::move(d));
      return n;
    }
    if (w == "generation") {  // transformers' AssistantTracker: renders its body as is
      expect_block_end();
      NodePtr b = body({"endgeneration"}, "generation", line);
      ++p;
      expect_block_end();
      return b;
    }
    if (w == "break" || w == "continue") {
      auto n = node(w == "break" ? N::Break : N::Continue, line);
      expect_block_end();
      return n;
    }
    --p;
    error(fmt::format("unknown or unsupported tag '{}'", w));
  }
};

/// Checks that break/continue sit inside a loop (jinja2 rejects them elsewhere at compile time).
void check_loops(const Node& n, bool in_loop, const std::string& name) {
  if ((n.kind == N::Break || n.kind == N::Continue) && !in_loop)
    throw ParseError(fmt::format("{}:{}: '{}' outside a loop", name, n.line,
                                 n.kind == N::Break ? "break" : "continue"));
  for (std::size_t i = 0; i < n.kids.size(); ++i) {
    if (!n.kids[i]) continue;
    bool inner = in_loop;
    if (n.kind == N::For) inner = (i == 2);  // the body; the else block is outside the loop
    if (n.kind == N::For && i == 3) inner = in_loop;
    if (n.kind == N::Macro) inner = false;
    check_loops(*n.kids[i], inner, name);
  }
}

}  // namespace

Program parse(std::vector<Token> tokens, const std::string& name, int max_depth) {
  Parser ps{std::move(tokens), name, max_depth};
  Program prog;
  prog.name = name;
  prog.root = ps.body({}, "", 0);
  check_loops(*prog.root, false, name);
  return prog;
}

}  // namespace qstar::hf::jinja

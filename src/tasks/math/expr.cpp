// The LaTeX-subset parser and evaluators of the math grader (src/tasks/math/expr.hpp).
#include "expr.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

namespace qstar::math::detail {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

constexpr std::array<std::string_view, 24> kGreek = {
    "alpha", "beta",  "gamma", "delta", "epsilon", "zeta",  "eta",   "theta",
    "iota",  "kappa", "lambda", "mu",   "nu",      "xi",    "rho",   "sigma",
    "tau",   "phi",   "chi",   "psi",   "omega",   "varphi", "vartheta", "varepsilon"};
constexpr std::array<std::string_view, 13> kFuncs = {"sin", "cos", "tan", "sec", "csc", "cot", "ln",
                                                      "log", "exp", "arcsin", "arccos", "arctan", "abs"};

template <std::size_t N>
bool one_of(const std::array<std::string_view, N>& set, std::string_view s) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

NodePtr make(Op op, NodePtr a = nullptr, NodePtr b = nullptr) {
  auto n = std::make_unique<Node>();
  n->op = op;
  n->a = std::move(a);
  n->b = std::move(b);
  return n;
}

/// Recursive descent over the text; every method returns null on a syntax error.
class Parser {
 public:
  Parser(std::string_view s, Budget& b) : s_(s), budget_(b) {}

  NodePtr whole() {
    auto e = expr(0);
    skip();
    if (!e || pos_ != s_.size()) return nullptr;
    return e;
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
  Budget& budget_;

  void skip() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
  }
  char peek() {
    skip();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  void enter(int depth) {
    budget_.tick();
    if (depth > budget_.limits->max_depth) throw LimitHit{};
  }
  /// The command name at pos_ (after '\\'), without consuming; empty if none.
  std::string_view command_at(std::size_t at) const {
    if (at >= s_.size() || s_[at] != '\\') return {};
    std::size_t e = at + 1;
    while (e < s_.size() && is_alpha(s_[e])) ++e;
    return s_.substr(at + 1, e - at - 1);
  }
  bool eat_command(std::string_view name) {
    skip();
    if (command_at(pos_) == name) {
      pos_ += name.size() + 1;
      return true;
    }
    return false;
  }

  NodePtr expr(int depth) {
    enter(depth);
    auto lhs = term(depth + 1);
    for (;;) {
      if (!lhs) return nullptr;
      const char c = peek();
      if (c != '+' && c != '-') return lhs;
      ++pos_;
      auto rhs = term(depth + 1);
      if (!rhs) return nullptr;
      lhs = make(c == '+' ? Op::Add : Op::Sub, std::move(lhs), std::move(rhs));
    }
  }

  bool starts_primary() {
    const char c = peek();
    if (is_digit(c) || c == '.' || is_alpha(c) || c == '(' || c == '{') return true;
    if (c == '\\') {
      const auto cmd = command_at(pos_);
      return cmd == "frac" || cmd == "sqrt" || cmd == "pi" || cmd == "infty" || one_of(kGreek, cmd) ||
             one_of(kFuncs, cmd);
    }
    return false;
  }

  static bool is_int_lit(const Node& n) {
    return (n.op == Op::Num && n.int_literal) || (n.op == Op::Neg && n.a->op == Op::Num && n.a->int_literal);
  }

  NodePtr term(int depth) {
    enter(depth);
    auto lhs = unary(depth + 1);
    bool first = true;
    for (;;) {
      if (!lhs) return nullptr;
      const char c = peek();
      Op op;
      if (c == '*') {
        ++pos_;
        op = Op::Mul;
      } else if (c == '/') {
        ++pos_;
        op = Op::Div;
      } else if (eat_command("cdot") || eat_command("times")) {
        op = Op::Mul;
      } else if (eat_command("div")) {
        op = Op::Div;
      } else if (starts_primary()) {
        // A mixed number: an integer literal followed by \frac{int}{int}.
        if (first && is_int_lit(*lhs) && command_at(pos_) == "frac") {
          auto f = power(depth + 1);
          if (!f) return nullptr;
          if (f->op == Op::Div && f->a->op == Op::Num && f->a->int_literal && f->b->op == Op::Num &&
              f->b->int_literal) {
            if (lhs->op == Op::Neg) {
              lhs = make(Op::Neg, make(Op::Add, std::move(lhs->a), std::move(f)));
            } else {
              lhs = make(Op::Add, std::move(lhs), std::move(f));
            }
          } else {
            lhs = make(Op::Mul, std::move(lhs), std::move(f));
          }
          first = false;
          continue;
        }
        auto rhs = power(depth + 1);
        if (!rhs) return nullptr;
        lhs = make(Op::Mul, std::move(lhs), std::move(rhs));
        first = false;
        continue;
      } else {
        return lhs;
      }
      auto rhs = unary(depth + 1);
      if (!rhs) return nullptr;
      lhs = make(op, std::move(lhs), std::move(rhs));
      first = false;
    }
  }

  NodePtr unary(int depth) {
    enter(depth);
    const char c = peek();
    if (c == '-') {
      ++pos_;
      auto a = unary(depth + 1);
      return a ? make(Op::Neg, std::move(a)) : nullptr;
    }
    if (c == '+') {
      ++pos_;
      return unary(depth + 1);
    }
    return power(depth + 1);
  }

  NodePtr power(int depth) {
    enter(depth);
    auto base = primary(depth + 1);
    while (base && peek() == '^') {
      ++pos_;
      auto ex = exponent(depth + 1);
      if (!ex) return nullptr;
      base = make(Op::Pow, std::move(base), std::move(ex));
    }
    return base;
  }

  /// A LaTeX exponent or argument: a braced group, a single digit, or a primary.
  NodePtr exponent(int depth) {
    enter(depth);
    const char c = peek();
    if (c == '-') {
      ++pos_;
      auto a = exponent(depth + 1);
      return a ? make(Op::Neg, std::move(a)) : nullptr;
    }
    if (is_digit(c)) {
      ++pos_;
      auto n = make(Op::Num);
      n->value = c - '0';
      n->int_literal = true;
      return n;
    }
    return primary(depth + 1);
  }

  NodePtr group(int depth, char close) {
    ++pos_;
    auto e = expr(depth + 1);
    if (!e || peek() != close) return nullptr;
    ++pos_;
    return e;
  }

  NodePtr number() {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    bool dec = false;
    std::size_t frac_start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '.' && pos_ + 1 < s_.size() && is_digit(s_[pos_ + 1])) {
      dec = true;
      ++pos_;
      frac_start = pos_;
      while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    } else if (pos_ < s_.size() && s_[pos_] == '.' && pos_ == start) {
      return nullptr;
    }
    if (pos_ == start) return nullptr;
    std::string digits;
    for (std::size_t k = start; k < pos_; ++k)
      if (is_digit(s_[k])) digits += s_[k];
    auto n = make(Op::Num);
    const auto nz = digits.find_first_not_of('0');  // a leading 0 would read as octal
    digits = nz == std::string::npos ? "0" : digits.substr(nz);
    n->value = Rational(Int(digits));
    if (dec) n->value /= boost::multiprecision::pow(Int(10), static_cast<unsigned>(pos_ - frac_start));
    n->decimal = dec;
    n->int_literal = !dec;
    return n;
  }

  NodePtr func(std::string_view name, int depth) {
    NodePtr arg;
    const char c = peek();
    if (c == '(' || c == '{') {
      arg = group(depth + 1, c == '(' ? ')' : '}');
    } else {
      arg = power(depth + 1);
    }
    if (!arg) return nullptr;
    auto n = make(Op::Func, std::move(arg));
    n->name = name;
    return n;
  }

  NodePtr sqrt_rest(int depth) {
    NodePtr index;
    if (peek() == '[') {
      index = group(depth + 1, ']');
      if (!index) return nullptr;
    }
    auto rad = exponent(depth + 1);
    if (!rad) return nullptr;
    return make(Op::Sqrt, std::move(rad), std::move(index));
  }

  NodePtr primary(int depth) {
    enter(depth);
    const char c = peek();
    if (is_digit(c) || c == '.') return number();
    if (c == '(') return group(depth, ')');
    if (c == '{') return group(depth, '}');
    if (c == '\\') {
      const auto cmd = command_at(pos_);
      if (cmd.empty()) return nullptr;
      pos_ += cmd.size() + 1;
      if (cmd == "frac") {
        auto num = exponent(depth + 1);
        if (!num) return nullptr;
        auto den = exponent(depth + 1);
        if (!den) return nullptr;
        return make(Op::Div, std::move(num), std::move(den));
      }
      if (cmd == "sqrt") return sqrt_rest(depth);
      if (cmd == "pi") return make(Op::Pi);
      if (cmd == "infty") return make(Op::Inf);
      if (one_of(kGreek, cmd)) {
        auto v = make(Op::Var);
        v->name = std::string("\\") + std::string(cmd);
        return subscript(std::move(v));
      }
      if (one_of(kFuncs, cmd)) return func(cmd, depth);
      return nullptr;
    }
    if (is_alpha(c)) {
      std::size_t e = pos_;
      while (e < s_.size() && is_alpha(s_[e])) ++e;
      const auto word = s_.substr(pos_, e - pos_);
      if (word == "sqrt") {
        pos_ = e;
        return sqrt_rest(depth);
      }
      if (word == "pi") {
        pos_ = e;
        return make(Op::Pi);
      }
      if (one_of(kFuncs, word)) {
        pos_ = e;
        return func(word, depth);
      }
      if (word.size() >= 3) return nullptr;  // a word, not a product of variables
      ++pos_;
      if (c == 'i') return make(Op::I);
      auto v = make(Op::Var);
      v->name = std::string(1, c);
      return subscript(std::move(v));
    }
    return nullptr;
  }

  NodePtr subscript(NodePtr v) {
    if (pos_ < s_.size() && s_[pos_] == '_') {
      ++pos_;
      if (pos_ >= s_.size()) return nullptr;
      std::size_t e = pos_ + 1;
      if (s_[pos_] == '{') {
        e = s_.find('}', pos_);
        if (e == std::string_view::npos) return nullptr;
        ++e;
      }
      v->name += "_";
      v->name += s_.substr(pos_, e - pos_);
      pos_ = e;
    }
    return v;
  }
};

bool too_big(const Rational& r, const GraderLimits& lim) {
  using boost::multiprecision::msb;
  std::size_t bits = 0;
  const Int& n = boost::multiprecision::numerator(r);
  const Int& d = boost::multiprecision::denominator(r);
  if (n != 0) bits += msb(boost::multiprecision::abs(n));
  if (d != 0) bits += msb(d);
  return bits > lim.max_exact_bits;
}

/// Past max_exact_bits the answer is not compared approximately: LimitHit (text only).
std::optional<Exact> checked(Exact v, const GraderLimits& lim) {
  if (too_big(v.re, lim) || too_big(v.im, lim)) throw LimitHit{};
  return v;
}

std::optional<Rational> exact_sqrt(const Rational& r) {
  if (r < 0) return std::nullopt;
  const Int n = boost::multiprecision::numerator(r), d = boost::multiprecision::denominator(r);
  const Int sn = boost::multiprecision::sqrt(n), sd = boost::multiprecision::sqrt(d);
  if (sn * sn != n || sd * sd != d) return std::nullopt;
  return Rational(sn, sd);
}

Exact mul(const Exact& x, const Exact& y) {
  return {x.re * y.re - x.im * y.im, x.re * y.im + x.im * y.re};
}

}  // namespace

std::string Exact::to_string() const {
  if (im == 0) return re.str();
  std::string out;
  if (re != 0) out = re.str();
  if (im == 1) {
    out += re != 0 ? "+i" : "i";
  } else if (im == -1) {
    out += "-i";
  } else {
    if (im > 0 && re != 0) out += "+";
    out += im.str() + "i";
  }
  return out;
}

NodePtr parse_expression(std::string_view text, Budget& budget) {
  Parser p(text, budget);
  return p.whole();
}

std::optional<Exact> eval_exact(const Node& n, Budget& budget) {
  budget.tick();
  const GraderLimits& lim = *budget.limits;
  switch (n.op) {
    case Op::Num: return Exact{n.value, 0};
    case Op::I: return Exact{0, 1};
    case Op::Var:
    case Op::Pi:
    case Op::Inf:
    case Op::Func: return std::nullopt;
    case Op::Neg: {
      auto a = eval_exact(*n.a, budget);
      if (!a) return std::nullopt;
      return Exact{-a->re, -a->im};
    }
    case Op::Add:
    case Op::Sub: {
      auto a = eval_exact(*n.a, budget);
      if (!a) return std::nullopt;
      auto b = eval_exact(*n.b, budget);
      if (!b) return std::nullopt;
      if (n.op == Op::Add) return checked({a->re + b->re, a->im + b->im}, lim);
      return checked({a->re - b->re, a->im - b->im}, lim);
    }
    case Op::Mul: {
      auto a = eval_exact(*n.a, budget);
      if (!a) return std::nullopt;
      auto b = eval_exact(*n.b, budget);
      if (!b) return std::nullopt;
      return checked(mul(*a, *b), lim);
    }
    case Op::Div: {
      auto a = eval_exact(*n.a, budget);
      if (!a) return std::nullopt;
      auto b = eval_exact(*n.b, budget);
      if (!b) return std::nullopt;
      const Rational den = b->re * b->re + b->im * b->im;
      if (den == 0) return std::nullopt;
      return checked(mul(*a, Exact{b->re / den, -b->im / den}), lim);
    }
    case Op::Pow: {
      auto a = eval_exact(*n.a, budget);
      if (!a) return std::nullopt;
      auto e = eval_exact(*n.b, budget);
      if (!e || e->im != 0) return std::nullopt;
      if (boost::multiprecision::denominator(e->re) == 2 && a->im == 0 &&
          boost::multiprecision::abs(boost::multiprecision::numerator(e->re)) == 1) {
        auto r = exact_sqrt(a->re);  // x^{1/2}, x^{-1/2}
        if (!r || (*r == 0 && e->re < 0)) return std::nullopt;
        return Exact{e->re > 0 ? *r : Rational(1) / *r, 0};
      }
      if (boost::multiprecision::denominator(e->re) != 1) return std::nullopt;
      const Int k = boost::multiprecision::numerator(e->re);
      if (boost::multiprecision::abs(k) > lim.max_exponent) throw LimitHit{};
      long long kk = k.convert_to<long long>();
      const bool neg = kk < 0;
      if (neg) kk = -kk;
      if (a->re == 0 && a->im == 0) {
        if (neg) return std::nullopt;
        return Exact{kk == 0 ? 1 : 0, 0};
      }
      // Size check before the work: bits(result) ~ bits(base) * k.
      {
        Exact probe = *a;
        std::size_t bits = 0;
        for (const Rational* r : {&probe.re, &probe.im}) {
          if (*r == 0) continue;
          bits = std::max<std::size_t>(bits, msb(boost::multiprecision::abs(boost::multiprecision::numerator(*r))) +
                                                 msb(boost::multiprecision::denominator(*r)) + 2);
        }
        if (bits * static_cast<std::size_t>(kk) > lim.max_exact_bits) throw LimitHit{};
      }
      Exact result{1, 0}, base = *a;
      while (kk > 0) {
        budget.tick();
        if (kk & 1) result = mul(result, base);
        kk >>= 1;
        if (kk) base = mul(base, base);
      }
      if (neg) {
        const Rational den = result.re * result.re + result.im * result.im;
        result = Exact{result.re / den, -result.im / den};
      }
      return checked(result, lim);
    }
    case Op::Sqrt: {
      if (n.b) return std::nullopt;
      auto a = eval_exact(*n.a, budget);
      if (!a || a->im != 0) return std::nullopt;
      auto r = exact_sqrt(a->re);
      if (!r) return std::nullopt;
      return Exact{*r, 0};
    }
  }
  return std::nullopt;
}

std::complex<double> eval_complex(const Node& n, const Assignment& vars, Budget& budget) {
  using C = std::complex<double>;
  budget.tick();
  switch (n.op) {
    case Op::Num: return {n.value.convert_to<double>(), 0.0};
    case Op::I: return {0.0, 1.0};
    case Op::Pi: return {std::numbers::pi, 0.0};
    case Op::Inf: return {HUGE_VAL, 0.0};
    case Op::Var:
      for (const auto& [name, v] : vars)
        if (name == n.name) return v;
      return {std::nan(""), 0.0};
    case Op::Neg: return -eval_complex(*n.a, vars, budget);
    case Op::Add: return eval_complex(*n.a, vars, budget) + eval_complex(*n.b, vars, budget);
    case Op::Sub: return eval_complex(*n.a, vars, budget) - eval_complex(*n.b, vars, budget);
    case Op::Mul: return eval_complex(*n.a, vars, budget) * eval_complex(*n.b, vars, budget);
    case Op::Div: return eval_complex(*n.a, vars, budget) / eval_complex(*n.b, vars, budget);
    case Op::Pow: {
      const C a = eval_complex(*n.a, vars, budget), e = eval_complex(*n.b, vars, budget);
      if (e.imag() == 0 && a.imag() == 0 && e.real() == std::round(e.real()) && std::abs(e.real()) < 1e6)
        return {std::pow(a.real(), e.real()), 0.0};
      if (e.imag() == 0 && a.imag() == 0 && a.real() >= 0) return {std::pow(a.real(), e.real()), 0.0};
      return std::pow(a, e);
    }
    case Op::Sqrt: {
      const C a = eval_complex(*n.a, vars, budget);
      if (!n.b) return a.imag() == 0 && a.real() >= 0 ? C(std::sqrt(a.real()), 0.0) : std::sqrt(a);
      const C k = eval_complex(*n.b, vars, budget);
      if (a.imag() == 0 && k.imag() == 0 && k.real() != 0) {
        // Real odd roots of negative numbers, as written in LaTeX (\sqrt[3]{-8} = -2).
        if (a.real() < 0 && std::fmod(std::abs(k.real()), 2.0) == 1.0)
          return {-std::pow(-a.real(), 1.0 / k.real()), 0.0};
        if (a.real() >= 0) return {std::pow(a.real(), 1.0 / k.real()), 0.0};
      }
      return std::pow(a, 1.0 / k);
    }
    case Op::Func: {
      const C a = eval_complex(*n.a, vars, budget);
      const auto& f = n.name;
      if (f == "sin") return std::sin(a);
      if (f == "cos") return std::cos(a);
      if (f == "tan") return std::tan(a);
      if (f == "sec") return 1.0 / std::cos(a);
      if (f == "csc") return 1.0 / std::sin(a);
      if (f == "cot") return 1.0 / std::tan(a);
      if (f == "ln") return std::log(a);
      if (f == "log") return std::log10(a);
      if (f == "exp") return std::exp(a);
      if (f == "arcsin") return std::asin(a);
      if (f == "arccos") return std::acos(a);
      if (f == "arctan") return std::atan(a);
      if (f == "abs") return {std::abs(a), 0.0};
      return {std::nan(""), 0.0};
    }
  }
  return {std::nan(""), 0.0};
}

void collect_vars(const Node& n, std::vector<std::string>& out) {
  if (n.op == Op::Var && std::find(out.begin(), out.end(), n.name) == out.end()) out.push_back(n.name);
  if (n.a) collect_vars(*n.a, out);
  if (n.b) collect_vars(*n.b, out);
}

bool has_decimal(const Node& n) {
  return (n.op == Op::Num && n.decimal && boost::multiprecision::denominator(n.value) != 1) || (n.a && has_decimal(*n.a)) || (n.b && has_decimal(*n.b));
}

}  // namespace qstar::math::detail

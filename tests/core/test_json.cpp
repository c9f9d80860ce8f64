#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "qstar/core/json.hpp"

namespace json = qstar::json;
using qstar::ParseError;

namespace {

std::string parse_error(std::string_view text, std::string_view source = "json") {
  try {
    json::parse(text, source);
  } catch (const ParseError& e) {
    return e.what();
  }
  return "<no error>";
}

std::string roundtrip(std::string_view text) { return json::dump(json::parse(text)); }

std::string error_of(auto&& f) {
  try {
    f();
  } catch (const ParseError& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST_CASE("json: parse and dump round trip, compact and in insertion order") {
  CHECK(roundtrip("null") == "null");
  CHECK(roundtrip("true") == "true");
  CHECK(roundtrip("false") == "false");
  CHECK(roundtrip("0") == "0");
  CHECK(roundtrip("-12") == "-12");
  CHECK(roundtrip("\"\"") == "\"\"");
  CHECK(roundtrip("[]") == "[]");
  CHECK(roundtrip("{}") == "{}");
  CHECK(roundtrip(" \t\r\n [ 1 , 2.5 , \"x\" , { } , [ ] ] \n") == "[1,2.5,\"x\",{},[]]");
  const std::string doc =
      R"({"z":1,"a":[true,false,null],"m":{"e":-2.5,"d":"x","c":{"b":[[],[{}]]}},"b":1e-07})";
  CHECK(roundtrip(doc) == doc);
  CHECK(roundtrip(R"({ "b" : 1 , "a" : 2 })") == R"({"b":1,"a":2})");

  const json::Value v = json::parse(doc);
  REQUIRE(v.is_object());
  CHECK(v.size() == 4);
  CHECK(v.as_object()[0].first == "z");
  CHECK(v.as_object()[3].first == "b");
  CHECK(v.at("a").size() == 3);
  CHECK(v.at("a").at(std::size_t{0}).as_bool());
  CHECK(v.at("a").at(2).is_null());
  CHECK(v.at("m").at("c").at("b").at(1).at(std::size_t{0}).is_object());
  CHECK(v.get_double("b") == 1e-07);
  // dump_to appends
  std::string out = "prefix:";
  json::dump_to(out, v.at("a"));
  CHECK(out == "prefix:[true,false,null]");
}

TEST_CASE("json: string escapes and unicode") {
  const json::Value v = json::parse(R"("\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00")");
  CHECK(v.as_string() == "\"\\/\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  // UTF-8 is kept as is, '/' is not escaped, short escapes are used where they exist.
  CHECK(json::dump(v) == "\"\\\"\\\\/\\b\\f\\n\\r\\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"");
  CHECK(json::parse(json::dump(v)) == v);

  // Raw UTF-8 in the input is accepted (2, 3 and 4 byte forms, the extremes of each).
  const std::string raw = "\"\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\"";
  CHECK(json::dump(json::parse(raw)) == raw);

  // Other control characters as \u00XX, NUL included; DEL is not a control character in JSON.
  json::Value c(std::string("a\x01z\x1f\x7f", 5) + std::string(1, '\0'));
  CHECK(json::dump(c) == "\"a\\u0001z\\u001f\x7f\\u0000\"");
  CHECK(json::parse(json::dump(c)) == c);
  CHECK(json::parse(R"("\u0000")").as_string() == std::string(1, '\0'));

  // Invalid UTF-8 is replaced by U+FFFD on writing so the output stays valid JSON.
  json::Value bad(std::string("a\xFF" "b\xC3", 4));
  CHECK(json::dump(bad) == "\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD\"");
  CHECK_NOTHROW(json::parse(json::dump(bad)));

  // Keys are escaped too.
  json::Value o;
  o.set("k\"ey\n", 1);
  CHECK(json::dump(o) == R"({"k\"ey\n":1})");
  CHECK(json::parse(json::dump(o)) == o);
}

TEST_CASE("json: integers are exact") {
  const json::Value big = json::parse("9007199254740993");  // 2^53 + 1
  REQUIRE(big.is_integer());
  CHECK(big.as_int() == 9007199254740993LL);
  CHECK(json::dump(big) == "9007199254740993");
  CHECK(big != json::Value(9007199254740992.0));
  CHECK(json::Value(9007199254740992LL) == json::Value(9007199254740992.0));

  CHECK(roundtrip("9223372036854775807") == "9223372036854775807");
  CHECK(roundtrip("-9223372036854775808") == "-9223372036854775808");
  CHECK(json::parse("-9223372036854775808").as_int() == std::numeric_limits<std::int64_t>::min());
  // Beyond int64: a double.
  const json::Value over = json::parse("9223372036854775808");
  CHECK(over.is_double());
  CHECK(over.as_double() == 9223372036854775808.0);
  CHECK_THROWS_AS(over.as_int(), ParseError);

  // int32 token ids, extremes included.
  const json::Value toks = json::parse("[0,1,2147483647,-2147483648,151643]");
  std::vector<std::int32_t> ids;
  for (const auto& t : toks.as_array()) ids.push_back(static_cast<std::int32_t>(t.as_int()));
  CHECK(ids == std::vector<std::int32_t>{0, 1, 2147483647, -2147483648, 151643});
  CHECK(json::dump(toks) == "[0,1,2147483647,-2147483648,151643]");

  // Built from C++ integers.
  CHECK(json::dump(json::Value(std::int32_t{-7})) == "-7");
  CHECK(json::dump(json::Value(std::uint64_t{18446744073709551615ULL})) == "18446744073709551616");
  CHECK(json::Value(std::uint8_t{200}).as_int() == 200);

  // A number with a fraction or exponent is a double; as_int accepts integral ones.
  CHECK(json::parse("1e3").is_double());
  CHECK(json::parse("1e3").as_int() == 1000);
  CHECK(json::parse("2.0").as_int() == 2);
  CHECK_THROWS_AS(json::parse("2.5").as_int(), ParseError);

  // -0 keeps its sign (a double).
  const json::Value nz = json::parse("-0");
  CHECK(nz.is_double());
  CHECK(std::signbit(nz.as_double()));
  CHECK(json::dump(nz) == "-0");
  CHECK(json::parse("0").is_integer());
}

TEST_CASE("json: doubles round-trip bit-exactly in shortest form") {
  std::vector<double> xs = {0.0,
                            -0.0,
                            0.1,
                            -0.3,
                            1.0 / 3.0,
                            2.0 / 3.0,
                            3.141592653589793,
                            1e-300,
                            1e300,
                            5e-324,  // smallest subnormal
                            2.2250738585072014e-308,
                            std::numeric_limits<double>::max(),
                            std::numeric_limits<double>::lowest(),
                            std::numeric_limits<double>::min(),
                            123456789.123456789,
                            1e15,
                            1e21,
                            9007199254740993.0,
                            -0.6931471805599453,
                            0.30000000000000004};
  std::uint64_t s = 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < 2000; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    const double d = std::bit_cast<double>(s);
    if (std::isfinite(d)) xs.push_back(d);
  }
  for (double d : xs) {
    const std::string text = json::dump(json::Value(d));
    const double back = json::parse(text).as_double();
    INFO(text);
    CHECK(std::bit_cast<std::uint64_t>(back) == std::bit_cast<std::uint64_t>(d));
    // The text re-dumps identically (an integral double may come back as an integer).
    CHECK(json::dump(json::parse(text)) == text);
  }
  CHECK(json::dump(json::Value(0.1)) == "0.1");
  CHECK(json::dump(json::Value(1.5)) == "1.5");
  CHECK(json::dump(json::Value(1e300)) == "1e+300");
  CHECK(json::dump(json::Value(0.0)) == "0");

  // Long inputs round to the nearest double; underflow gives 0; exponents upper/lower case.
  CHECK(json::parse("0.1000000000000000055511151231257827021181583404541015625").as_double() == 0.1);
  CHECK(json::parse("1E2").as_double() == 100.0);
  CHECK(json::parse("1e+2").as_double() == 100.0);
  CHECK(json::parse("1e-400").as_double() == 0.0);
  CHECK(std::signbit(json::parse("-1e-400").as_double()));
  CHECK(json::parse("0.000000000000000000001e-400").as_double() == 0.0);
  CHECK(json::parse("0e99999999999999999999").as_double() == 0.0);

  // NaN and infinities are written as null.
  CHECK(json::dump(json::Value(std::numeric_limits<double>::quiet_NaN())) == "null");
  CHECK(json::dump(json::Value(std::numeric_limits<double>::infinity())) == "null");
  CHECK(json::dump(json::Value(-std::numeric_limits<double>::infinity())) == "null");
}

TEST_CASE("json: accessors name the key") {
  const json::Value v = json::parse(R"({"n":3,"d":0.5,"s":"hi","b":true,"a":[1],"o":{},"z":null})");
  CHECK(v.get_int("n") == 3);
  CHECK(v.get_double("n") == 3.0);
  CHECK(v.get_double("d") == 0.5);
  CHECK(v.get_string("s") == "hi");
  CHECK(v.get_bool("b"));
  CHECK(v.get_array("a").size() == 1);
  CHECK(v.get_object("o").empty());
  CHECK(v.contains("z"));
  CHECK(v.at("z").is_null());
  CHECK(v.find("s") != nullptr);
  CHECK(v.find("nope") == nullptr);
  CHECK(json::Value(1).find("x") == nullptr);

  CHECK(error_of([&] { (void)v.at("missing"); }) == R"(json: key "missing": missing)");
  CHECK(error_of([&] { (void)v.get_int("missing"); }) == R"(json: key "missing": missing)");
  CHECK(error_of([&] { (void)v.get_int("s"); }) == R"(json: key "s": expected integer, got string)");
  CHECK(error_of([&] { (void)v.get_int("d"); }) == R"(json: key "d": expected integer, got number)");
  CHECK(error_of([&] { (void)v.get_string("n"); }) == R"(json: key "n": expected string, got integer)");
  CHECK(error_of([&] { (void)v.get_bool("z"); }) == R"(json: key "z": expected bool, got null)");
  CHECK(error_of([&] { (void)v.get_double("b"); }) == R"(json: key "b": expected number, got bool)");
  CHECK(error_of([&] { (void)v.get_array("o"); }) == R"(json: key "o": expected array, got object)");
  CHECK(error_of([&] { (void)v.get_object("a"); }) == R"(json: key "a": expected object, got array)");
  CHECK(error_of([&] { (void)v.as_array(); }) == "json: expected array, got object");
  CHECK(error_of([&] { (void)json::Value(1).at("k"); }) == "json: expected object, got integer");
  CHECK(error_of([&] { (void)v.at("a").at(5); }) == "json: index 5 out of range (array of 1)");
}

TEST_CASE("json: building values") {
  json::Value v;
  CHECK(v.is_null());
  v.set("a", 1);
  v.set("b", "two");
  v.set("c", json::Value::array());
  v.at("c").push_back(true);
  v.at("c").push_back(nullptr);
  v.at("c").push_back(2.5);
  v.set("a", 10);  // replaces in place
  v.append("d", std::string("x"));
  CHECK(json::dump(v) == R"({"a":10,"b":"two","c":[true,null,2.5],"d":"x"})");
  CHECK(v.erase("b"));
  CHECK_FALSE(v.erase("b"));
  CHECK(json::dump(v) == R"({"a":10,"c":[true,null,2.5],"d":"x"})");
  CHECK(json::parse(json::dump(v)) == v);
  json::Value w = v;
  w.at("c").at(1) = false;
  CHECK(w != v);
  CHECK(json::Value(std::string_view("s")) == json::Value("s"));
  CHECK(json::Value("s").is_string());  // not a bool
  CHECK(json::Value(json::Array{1, "x"}).size() == 2);
}

TEST_CASE("json: malformed input throws ParseError with line and column") {
  struct Case {
    std::string text;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"", "json: line 1 col 1: unexpected end of input"},
      {"   ", "json: line 1 col 4: unexpected end of input"},
      {"[1,2", "json: line 1 col 5: unexpected end of input, expected ',' or ']'"},
      {"[1,", "json: line 1 col 4: unexpected end of input"},
      {"[", "json: line 1 col 2: unexpected end of input"},
      {"{", "json: line 1 col 2: unexpected end of input, expected a string key"},
      {"{\"a\"", "json: line 1 col 5: unexpected end of input, expected ':'"},
      {"{\"a\":", "json: line 1 col 6: unexpected end of input"},
      {"{\"a\":1", "json: line 1 col 7: unexpected end of input, expected ',' or '}'"},
      {"[1,2,]", "json: line 1 col 6: trailing comma in array"},
      {"[,]", "json: line 1 col 2: unexpected character ','"},
      {"{\"a\":1,}", "json: line 1 col 8: trailing comma in object"},
      {"{,}", "json: line 1 col 2: unexpected character ','"},
      {"{\"a\" 1}", "json: line 1 col 6: unexpected character '1', expected ':'"},
      {"{a:1}", "json: line 1 col 2: unexpected character 'a', expected a string key"},
      {"{1:1}", "json: line 1 col 2: unexpected character '1', expected a string key"},
      {"[1 2]", "json: line 1 col 4: unexpected character '2', expected ',' or ']'"},
      {"{\"a\":1 \"b\":2}", "json: line 1 col 8: unexpected character '\"', expected ',' or '}'"},
      {"[1}", "json: line 1 col 3: unexpected character '}', expected ',' or ']'"},
      {"{\"a\":1]", "json: line 1 col 7: unexpected character ']', expected ',' or '}'"},
      {"01", "json: line 1 col 2: leading zeros are not allowed"},
      {"-01", "json: line 1 col 3: leading zeros are not allowed"},
      {"00.5", "json: line 1 col 2: leading zeros are not allowed"},
      {"1.", "json: line 1 col 3: unexpected end of input, expected a digit after the decimal point"},
      {"1.e5", "json: line 1 col 3: unexpected character 'e', expected a digit after the decimal point"},
      {".5", "json: line 1 col 1: unexpected character '.'"},
      {"1e", "json: line 1 col 3: unexpected end of input, expected a digit in the exponent"},
      {"1e+", "json: line 1 col 4: unexpected end of input, expected a digit in the exponent"},
      {"+1", "json: line 1 col 1: unexpected character '+'"},
      {"-", "json: line 1 col 2: unexpected end of input, expected a digit"},
      {"-a", "json: line 1 col 2: unexpected character 'a', expected a digit"},
      {"0x10", "json: line 1 col 2: unexpected trailing characters"},
      {"1e400", "json: line 1 col 1: number out of range"},
      {"-1e400", "json: line 1 col 1: number out of range"},
      {"[123.456e99999999999999]", "json: line 1 col 2: number out of range"},
      {"tru", "json: line 1 col 1: invalid literal, expected 'true'"},
      {"nul", "json: line 1 col 1: invalid literal, expected 'null'"},
      {"fals", "json: line 1 col 1: invalid literal, expected 'false'"},
      {"True", "json: line 1 col 1: unexpected character 'T'"},
      {"NaN", "json: line 1 col 1: unexpected character 'N'"},
      {"Infinity", "json: line 1 col 1: unexpected character 'I'"},
      {"-Infinity", "json: line 1 col 2: unexpected character 'I'"},
      {"'a'", "json: line 1 col 1: unexpected character '''"},
      {"\"abc", "json: line 1 col 5: unexpected end of input in string"},
      {"\"abc\\", "json: line 1 col 6: unexpected end of input in string"},
      {"\"a\x01" "b\"", "json: line 1 col 3: unescaped control character U+0001 in string"},
      {"\"a\tb\"", "json: line 1 col 3: unescaped control character U+0009 in string"},
      {"\"a\nb\"", "json: line 1 col 3: unescaped control character U+000A in string"},
      {"\"\\x\"", "json: line 1 col 2: invalid escape '\\x'"},
      {"\"\\U0041\"", "json: line 1 col 2: invalid escape '\\U'"},
      {"\"\\'\"", "json: line 1 col 2: invalid escape '\\''"},
      {"\"\\u12G4\"", "json: line 1 col 6: invalid hex digit in \\u escape"},
      {"\"\\u12\"", "json: line 1 col 6: invalid hex digit in \\u escape"},
      {"\"\\u12", "json: line 1 col 6: unexpected end of input in \\u escape"},
      {"\"\\ud800\"", "json: line 1 col 2: lone high surrogate in \\u escape"},
      {"\"\\ud800", "json: line 1 col 2: lone high surrogate in \\u escape"},
      {"\"\\udbff\\n\"", "json: line 1 col 2: lone high surrogate in \\u escape"},
      {"\"\\ud800\\u0041\"", "json: line 1 col 2: lone high surrogate in \\u escape"},
      {"\"\\ud800\\ud800\"", "json: line 1 col 2: lone high surrogate in \\u escape"},
      {"\"x\\udc00\"", "json: line 1 col 3: lone low surrogate in \\u escape"},
      {"\"\\ud800\\u00", "json: line 1 col 12: unexpected end of input in \\u escape"},
      {"\"\xFF\"", "json: line 1 col 2: invalid UTF-8 in string"},
      {"\"\x80\"", "json: line 1 col 2: invalid UTF-8 in string"},
      {"\"\xC0\xAF\"", "json: line 1 col 2: invalid UTF-8 in string"},      // overlong '/'
      {"\"\xE0\x80\xAF\"", "json: line 1 col 2: invalid UTF-8 in string"},  // overlong
      {"\"ab\xED\xA0\x80\"", "json: line 1 col 4: invalid UTF-8 in string"},  // surrogate
      {"\"\xE2\x82\"", "json: line 1 col 2: invalid UTF-8 in string"},      // truncated
      {"\"\xF4\x90\x80\x80\"", "json: line 1 col 2: invalid UTF-8 in string"},  // > U+10FFFF
      {"\"\xF8\x88\x80\x80\x80\"", "json: line 1 col 2: invalid UTF-8 in string"},
      {"[1] x", "json: line 1 col 5: unexpected trailing characters after the JSON value"},
      {"{\"a\":1}{", "json: line 1 col 8: unexpected trailing characters"},
      {"1 2", "json: line 1 col 3: unexpected trailing characters"},
      {"/* c */ 1", "json: line 1 col 1: unexpected character '/'"},
      {"[1,2] // c", "json: line 1 col 7: unexpected trailing characters"},
      {"[1,2]\n// c", "json: line 2 col 1: unexpected trailing characters"},
      {"{\n  \"a\": [1,\n  2,,]\n}", "json: line 3 col 5: unexpected character ','"},
      {"[\n\n      @]", "json: line 3 col 7: unexpected character '@'"},
      {"{\"a\":1,\"a\":2}", "json: line 1 col 8: duplicate key \"a\""},
      {"{\"a\":{\"b\":1,\"b\":1}}", "json: line 1 col 13: duplicate key \"b\""},
      {std::string("\0", 1), "json: line 1 col 1: unexpected byte 0x00"},
      {"[1,\x7f]", "json: line 1 col 4: unexpected byte 0x7F"},
      {"\xEF\xBB\xBF{}", "json: line 1 col 1: unexpected byte 0xEF"},  // no BOM
      {"[1]\x0b", "json: line 1 col 4: unexpected trailing characters"},  // VT is no JSON space
  };
  for (const auto& c : cases) {
    INFO("input: ", c.text);
    const std::string got = parse_error(c.text);
    CHECK_MESSAGE(got.rfind(c.want, 0) == 0, "got: ", got, "\nwant prefix: ", c.want);
  }
  // The source name leads the message.
  CHECK(parse_error("[", "configs/run.json") ==
        "configs/run.json: line 1 col 2: unexpected end of input, expected a JSON value");
}

TEST_CASE("json: nesting depth limit and duplicate keys in large objects") {
  const auto nest = [](int n, char open, char close) {
    return std::string(static_cast<std::size_t>(n), open) + std::string(static_cast<std::size_t>(n), close);
  };
  CHECK_NOTHROW(json::parse(nest(json::kMaxDepth, '[', ']')));
  CHECK(parse_error(nest(json::kMaxDepth + 1, '[', ']')) ==
        "json: line 1 col 257: nesting depth exceeds 256");
  CHECK(parse_error(nest(100000, '[', ']')) == "json: line 1 col 257: nesting depth exceeds 256");
  std::string objs;
  for (int i = 0; i < 300; ++i) objs += "{\"a\":";
  objs += "1";
  objs += std::string(300, '}');
  CHECK(parse_error(objs).find("nesting depth exceeds 256") != std::string::npos);
  // Mixed nesting counts both.
  std::string mixed;
  for (int i = 0; i < 128; ++i) mixed += "[{\"k\":";
  mixed += "0";
  for (int i = 0; i < 128; ++i) mixed += "}]";
  CHECK_NOTHROW(json::parse(mixed));
  CHECK_THROWS_AS(json::parse("[" + mixed + "]"), ParseError);

  // A large object: duplicates are still found, at the duplicate key.
  std::string big = "{";
  for (int i = 0; i < 100; ++i) big += fmt::format("\"k{}\":{},", i, i);
  const auto pos = big.size() + 1;
  big += "\"k7\":0}";
  CHECK(parse_error(big) == fmt::format("json: line 1 col {}: duplicate key \"k7\"", pos));
  big.replace(big.size() - 7, 4, "\"k100\"");
  const json::Value ok = json::parse(big);
  CHECK(ok.size() == 101);
  CHECK(ok.get_int("k99") == 99);
}

TEST_CASE("json: large inputs") {
  std::string text = "[";
  for (int i = 0; i < 200000; ++i) {
    if (i) text += ',';
    text += std::to_string(i * 7 - 3);
  }
  text += "]";
  const json::Value v = json::parse(text);
  CHECK(v.size() == 200000);
  CHECK(v.at(199999).as_int() == 199999 * 7 - 3);
  CHECK(json::dump(v) == text);

  const std::string long_str(1 << 20, 'x');
  CHECK(json::parse("\"" + long_str + "\"").as_string().size() == long_str.size());
}

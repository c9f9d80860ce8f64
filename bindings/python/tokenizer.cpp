// qstar.Tokenizer: a Hugging Face tokenizer.json (qstar::hf::Tokenizer, no LibTorch) from
// Python. Built when qstar::hf is (PCRE2 and utf8proc found); see bind_tokenizer's caller.
#include "common.hpp"

#ifdef QSTAR_HAS_HF
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "qstar/hf/tokenizer.hpp"
#endif

namespace qstar::python {

#ifdef QSTAR_HAS_HF
namespace {

using namespace pybind11::literals;

/// Each item of `texts` (a list or tuple of str) as UTF-8; InvalidArgument naming the item.
std::vector<std::string> texts_from(py::handle texts) {
  if (PyUnicode_Check(texts.ptr()) || (!PyList_Check(texts.ptr()) && !PyTuple_Check(texts.ptr())))
    throw InvalidArgument(
        fmt::format("texts: expected a list of str, got a {}", Py_TYPE(texts.ptr())->tp_name));
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(py::len(texts)));
  for (auto item : texts) {
    if (!PyUnicode_Check(item.ptr()))
      throw InvalidArgument(
          fmt::format("texts[{}]: expected a str, got a {}", out.size(), Py_TYPE(item.ptr())->tp_name));
    out.push_back(item.cast<std::string>());
  }
  return out;
}

/// Token ids from a list/tuple of ints; InvalidArgument for anything outside int32.
std::vector<std::int32_t> ids_from(py::handle ids) {
  if (PyUnicode_Check(ids.ptr()) || !PySequence_Check(ids.ptr()))
    throw InvalidArgument(fmt::format("ids: expected a list of int, got a {}", Py_TYPE(ids.ptr())->tp_name));
  std::vector<std::int32_t> out;
  out.reserve(static_cast<std::size_t>(py::len(ids)));
  for (auto item : ids) {
    if (!PyLong_Check(item.ptr()) || PyBool_Check(item.ptr()))
      throw InvalidArgument(fmt::format("ids[{}]: expected an int, got a {}", out.size(), Py_TYPE(item.ptr())->tp_name));
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(item.ptr(), &overflow);
    if (overflow != 0 || x < INT32_MIN || x > INT32_MAX)
      throw InvalidArgument(fmt::format("ids[{}]: {} is out of the int32 range", out.size(),
                                        py::str(item).cast<std::string>()));
    out.push_back(static_cast<std::int32_t>(x));
  }
  return out;
}

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<hf::Tokenizer>(
      m, "Tokenizer",
      "A Hugging Face tokenizer.json (BPE or WordLevel, the usual normalizers, pre-tokenizers, "
      "post-processors and decoders) in C++, without LibTorch. Token ids are the ones the model sees.")
      .def_static(
          "from_file",
          [](const std::string& path) {
            py::gil_scoped_release release;
            return hf::Tokenizer::from_file(path);
          },
          "path"_a, "Loads a tokenizer.json (qstar.IoError / qstar.ParseError naming the file).")
      .def_static(
          "from_json", [](const std::string& text) { return hf::Tokenizer::from_json(text); }, "text"_a,
          "A tokenizer from the text of a tokenizer.json.")
      .def(
          "encode",
          [](const hf::Tokenizer& t, const std::string& text, bool add_special_tokens) {
            py::gil_scoped_release release;
            return t.encode(text, add_special_tokens);
          },
          "text"_a, "add_special_tokens"_a = false,
          "The token ids of `text`; add_special_tokens applies the post-processor's template (e.g. a BOS).")
      .def(
          "encode_batch",
          [](const hf::Tokenizer& t, py::handle texts, bool add_special_tokens) {
            const std::vector<std::string> in = texts_from(texts);
            std::vector<std::vector<std::int32_t>> out(in.size());
            py::gil_scoped_release release;
            for (std::size_t i = 0; i < in.size(); ++i) out[i] = t.encode(in[i], add_special_tokens);
            return out;
          },
          "texts"_a, "add_special_tokens"_a = false, "encode() of each text, in one call.")
      .def(
          "decode",
          [](const hf::Tokenizer& t, py::handle ids, bool skip_special_tokens) {
            const std::vector<std::int32_t> v = ids_from(ids);
            std::string s;
            {
              py::gil_scoped_release release;
              s = t.decode(v, skip_special_tokens);
            }
            // Token boundaries may split a UTF-8 sequence: undecodable bytes become U+FFFD.
            return py::reinterpret_steal<py::str>(
                PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace"));
          },
          "ids"_a, "skip_special_tokens"_a = false,
          "The text of `ids` (ids without a token are skipped; skip_special_tokens drops special tokens).")
      .def("token_to_id", &hf::Tokenizer::token_to_id, "token"_a,
           "The id of a vocab string (added tokens first), or None.")
      .def("id_to_token", &hf::Tokenizer::id_to_token, "id"_a,
           "The vocab string of an id (byte-level tokens in their mapped form, e.g. 'Ġworld').")
      .def_property_readonly("vocab_size", &hf::Tokenizer::vocab_size)
      .def_property_readonly("bos_id", &hf::Tokenizer::bos_id, "The BOS id the template adds, or None.")
      .def_property_readonly("eos_id", &hf::Tokenizer::eos_id, "The EOS id, or None.")
      .def("__repr__", [](const hf::Tokenizer& t) { return fmt::format("Tokenizer(vocab_size={})", t.vocab_size()); });
}
#else
void bind_tokenizer(py::module_&) {}
#endif

}  // namespace qstar::python

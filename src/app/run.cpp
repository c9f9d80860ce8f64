// The `qstar` command line: the help text, the dispatch to one file per subcommand
// (solve.cpp, bench.cpp, lm.cpp, serve.cpp, viz.cpp, src/cli/train.cpp) and the exit codes. Every bad
// input (unknown flag, malformed problem, missing or malformed data file, invalid parameter)
// ends with one line on stderr naming the flag, file or field, and exit code 2.
#include <algorithm>

#include "app/app.hpp"
#ifdef QSTAR_HAS_VIZ
#include "app/viz.hpp"
#endif
#include "qstar/version.hpp"

namespace qstar::cli {

namespace {

bool g_tty = false;

constexpr const char* kUsage = R"(usage: qstar <command> [options]

commands:
  solve "PROBLEM"   solve one problem of the task (default: a Game of 24 puzzle "a b c d")
                    and print the steps, answer and stats
  bench             run searches over a data split of the task and print a table
  lm logits|tokenize|generate   the language-model backend, e.g.
                    qstar lm logits --model DIR (--text "..." | --tokens 1,2,3) [--json]
                    qstar lm tokenize --model DIR (--text "..." | --file texts.jsonl
                                      [--add-special-tokens])   (--file: one {"text": ...}
                                      per line in, one {"tokens": [...]} per line out)
                    qstar lm generate --model DIR --prompt "..." [--steps N] [--candidates K] [sampling flags]
  serve             serve a model folder over HTTP (OpenAI-compatible subset; qstar serve --help)
  serve --search ALGO   serve searches as OpenAI-compatible chat/completions (search flags as
                    solve; qstar serve --search beam --help)
  task check|extract   the task's answer grader and extractor over JSONL (qstar task --help):
                    qstar task check --task math --pairs FILE.jsonl [--mode lenient|strict]
                    qstar task extract --task math --texts FILE.jsonl
  viz TREE.jsonl [-o tree.html] [--problem K]   the search trees of a trace (solve --tree,
                    bench --trace) as one self-contained HTML page (qstar viz --help)
  train STAGE       train the task's generator, PRM and ORM (qstar train --help; LibTorch;
                    --task NAME as below)
  version           print the version
  help              print this help

common options (solve and bench):
  --task NAME             the task: {tasks} (default {default_task})
  --algo NAME[,NAME...]   best-of-n | beam | dvts | best-first | mcts | particle-filter (pf) |
                          rebase | adaptive-best-of-n (asc) | deepconf   (solve: one; default beam)
  --seed S                random seed (default 0)
  --generator KIND        lm:DIR (a Llama/Qwen2/Qwen3/Mistral folder) | programmatic | http:URL[,URL...]
                          default: lm:models/generator, the trained model (found through
                          QSTAR_MODELS_DIR, the install or the checkout), when qstar has
                          LibTorch; otherwise programmatic
  --device cpu|cuda|cuda:N --dtype float32|bfloat16|float16|int8   (lm and prm backends;
                          the weights' dtype: on CPU bfloat16/float16 halve their memory,
                          int8 (CPU only, per-row scales) quarters the linear layers',
                          computing in float32)
  --temperature T --top-p P --top-k K --delimiter "\n" --kv-cache-mb M   (lm:DIR)
  --threads N             compute threads of the lm/prm models (ATen and BLAS together;
                          also for lm and serve; default: the cores, or fewer when
                          OMP_NUM_THREADS / OPENBLAS_NUM_THREADS say so)
  --no-token-stats        lm:DIR: no per-token logprobs / entropies in the steps (traces)
  --answer-marker TEXT    the text that starts a final step, flagged as the lm/http
                          generator samples it (default: the task's; "" for none)
  --error-rate R          programmatic generator: chance of a wrong step (default 0.1)
  --verifier KIND         prm:PATH | oracle (exact) | none (best-of-n, adaptive-best-of-n,
                          deepconf) | http:URL[,URL...]
                          default: prm:models/prm, the trained PRM, found like the generator;
                          otherwise oracle
  http:URL plug-ins (vLLM, SGLang, qstar serve; docs/serving.md): --generator http:URL[,URL...]
                          --step-tag T --http-api pooling|classify --score-index I --model-name M
                          --http-timeout S --http-retries N --http-in-flight N --api-key-env VAR
  --orm KIND              best-of-n: an outcome verifier that ranks the samples (implies
                          --scoring orm): oracle | prm:PATH (a PRM folder read at the last step)
  --greedy                every generator request is greedy (temperature 0)
  --prm-kind KIND         token-logit | chat-logit | token-class | process-reward | value-head |
                          reward-model | seq-class | torchscript (default: inferred from
                          config.json's architecture; docs/models.md); --orm-kind for --orm
  --prm-chat-template P   the PRM's own chat layout of the problem: auto (the PRM folder's
                          tokenizer_config.json), a model folder, a tokenizer_config.json or
                          a Jinja file; --prm-system TEXT adds a system message
  --scoring KIND          best-of-n, adaptive-best-of-n: auto | prm | orm | none
  --max-depth D --max-step-tokens T --aggregation min|prod|last|mean
  --voting naive|majority|weighted|topk --top-k K
  budgets per problem: --max-tokens --max-verifier-tokens --max-calls --max-nodes --max-seconds
  beam/dvts: --width M; beam: --lookahead K --dedup
  adaptive-best-of-n: --round-size R --stop-rule share|beta --agreement T --min-answers M --scoring
  deepconf: --confidence mean|lowest|tail --window W --keep-fraction F --online --warmup W
  best-first: --expand-k K --pops B --lambda L --g-aggregation A --threshold T --node-expansions E
  mcts: --leaves B --expand-k K --selection puct|uct --c-puct C --c-puct-base B --c-uct C
        --widening --pw-c C --pw-alpha A --virtual-loss N --eval value|rollout|mixed
        --rollout-mix A --sampled-rollouts --backup mean|max --dirichlet-eps E
        --dirichlet-alpha A --normalize-q --final visits|value|vote --vote-by-score
  particle-filter: --score-temperature T --resample-threshold R; rebase: --score-temperature T

solve:  qstar solve "4 5 6 10" [--n N] [--tree out.jsonl] [--json]
bench:  qstar bench --data FILE [--ranks 901-1000] [--n 1,4,16,64] [--json out.json]
        [--trace out.jsonl] [--chunk C] [--results FILE.jsonl [--resume]]
        data options (--task math): --question-field F --answer-field F --limit N
        --level 1,2 --subject NAME[,NAME]
chat prompts (--task math): the model's chat template from lm:DIR's tokenizer_config.json by
        default; --chat-template FILE (Jinja, or a tokenizer_config.json / model folder) or
        --no-chat-template (the plain prompt)
The budget knob --n is: best-of-n samples N, beam beams N, dvts completions N,
best-first expansions, mcts simulations, particle-filter particles N, rebase completions N,
adaptive-best-of-n samples at most, deepconf traces.
)";


/// The help text, with the registered tasks.
std::string usage() {
  const auto names = builtin_tasks().names();
  std::string u = kUsage;
  const auto put = [&](std::string_view key, const std::string& value) {
    if (const auto at = u.find(key); at != std::string::npos) u.replace(at, key.size(), value);
  };
  put("{tasks}", fmt::format("{}", fmt::join(names, ", ")));
  put("{default_task}", names.front());
  return u;
}

#ifdef QSTAR_HAS_TORCH
/// The train command line for src/cli/train.cpp: --task NAME taken out (the default task is
/// the first registered; only it has a training pipeline yet), and the task's data file
/// from qstar's data directory as --data when none is given.
std::vector<std::string> train_args(const std::vector<std::string>& args) {
  if (args.size() < 2 || args[1] == "--help" || args[1] == "help") return args;
  std::vector<std::string> out;
  std::optional<std::string> task;
  bool has_data = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (i >= 2 && (a == "--task" || a.rfind("--task=", 0) == 0)) {
      if (task) throw UsageError("flag --task given twice");
      if (a == "--task") {
        if (i + 1 >= args.size()) throw UsageError("flag --task needs a value");
        task = args[++i];
      } else {
        task = a.substr(7);
      }
      continue;
    }
    if (i >= 2 && (a == "--data" || a.rfind("--data=", 0) == 0)) has_data = true;
    out.push_back(a);
  }
  const auto& r = builtin_tasks();
  const std::string name = task.value_or(r.names().front());
  if (name != r.names().front())
    throw UsageError(fmt::format("--task: '{}' has no training pipeline (train supports: {})", name, r.names().front()));
  const TaskEntry& entry = r.at(name);
  if (!has_data && !entry.default_data.empty())
    if (auto f = find_data_file(entry.default_data)) {
      out.emplace_back("--data");
      out.push_back(*f);
    }
  return out;
}
#endif

}  // namespace

void set_progress_tty(bool tty) { g_tty = tty; }
bool progress_tty() { return g_tty; }

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  try {
    if (args.empty()) {
      err << "qstar: error: no command given (try 'qstar help')\n";
      return 2;
    }
    const std::string& cmd = args[0];
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      out << usage();
      return 0;
    }
    if (cmd == "version" || cmd == "--version") {
      out << "qstar " << QSTAR_VERSION_STRING << "\n";
      return 0;
    }
#ifdef QSTAR_HAS_SEARCH_SERVICE
    if (cmd == "serve" && is_search_serve(args)) return cmd_serve_search(args, out, err);
#endif
#ifdef QSTAR_HAS_HTTP_SERVER
    if (cmd == "serve") return cmd_serve(args, out);
#else
    if (cmd == "serve") throw UsageError("serve: this qstar was built without LibTorch or cpp-httplib (QSTAR_WITH_HTTP)");
#endif
#ifdef QSTAR_HAS_TORCH
    if (cmd == "lm") return cmd_lm(args, out);
    if (cmd == "train") return cmd_train(train_args(args), out, err, g_tty);
#else
    if (cmd == "lm") throw UsageError("lm: this qstar was built without LibTorch (QSTAR_WITH_TORCH=OFF)");
    if (cmd == "train") throw UsageError("train: this qstar was built without LibTorch (QSTAR_WITH_TORCH=OFF)");
#endif
    if (cmd == "task") return cmd_task(args, out);
#ifdef QSTAR_HAS_VIZ
    if (cmd == "viz") return cmd_viz(args, out);
#else
    if (cmd == "viz") throw UsageError("viz: this qstar was built without the viewer page");
#endif
    if (cmd != "solve" && cmd != "bench") throw UsageError(fmt::format("unknown command '{}' (try 'qstar help')", cmd));
    const Args a(args, 1, cmd);
    if (a.has("help")) {
      out << usage();
      return 0;
    }
    apply_threads(a);
    return cmd == "solve" ? cmd_solve(a, out, err) : cmd_bench(a, out, err);
  } catch (const PluginError& e) {
    err << "qstar: error: " << e.what() << "\n";
    return 1;
  } catch (const Error& e) {  // InvalidArgument, ParseError, IoError: bad input
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    err << "qstar: error: " << msg << "\n";
    return 2;
  } catch (const std::exception& e) {
    err << "qstar: internal error: " << e.what() << "\n";
    return 1;
  }
}

std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char c = s[++i];
      out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
    } else {
      out += s[i];
    }
  }
  return out;
}
}  // namespace qstar::cli

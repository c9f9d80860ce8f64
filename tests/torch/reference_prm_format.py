#!/usr/bin/env python3
"""The texts the real verifiers' own code feeds their models, for PrmVerifier layout tests.

Renders chat templates with Python's jinja2 the way transformers' apply_chat_template does
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, raise_exception,
tojson), independently of qstar's Jinja. Each format follows the published inference code:

  qwen-prm     Qwen2.5-Math-PRM: messages [system, user: problem, assistant: "<extra_0>".join(steps)
               + "<extra_0>"], add_generation_prompt=False -> {"text"}; the model is read where
               input_ids == the <extra_0> id.
  rlhflow      RLHFlow/Llama3.1-8B-PRM-Deepseek-Data: for step k, the conversation so far (user:
               problem + " " + step 0 | step k, assistant: "+") rendered -> {"convs": [...]}; the
               model is read at position -3 of each conversation's tokens.
  chat-outcome Qwen2.5-Math-RM / sequence classifiers: [system?, user: problem, assistant:
               "\n\n".join(steps)], add_generation_prompt=False -> {"text"}; read at the last token.

Usage: reference_prm_format.py JOBS.json OUT.json   (JOBS: a list of {"format", "template",
"bos", "eos", "system", "problem", "steps"}; OUT: the list of results, in order).
"""
import json
import sys

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise ValueError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def render(template, messages, bos, eos, add_generation_prompt=False):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, bos_token=bos, eos_token=eos,
                                            add_generation_prompt=add_generation_prompt)


def run(job):
    fmt, tpl, bos, eos = job["format"], job["template"], job.get("bos", ""), job.get("eos", "")
    problem, steps, system = job["problem"], job["steps"], job.get("system")
    if fmt == "qwen-prm":
        messages = [{"role": "system", "content": system}, {"role": "user", "content": problem},
                    {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"}]
        return {"text": render(tpl, messages, bos, eos)}
    if fmt == "rlhflow":
        conversation, convs = [], []
        for k, step in enumerate(steps):
            text = problem + " " + step if k == 0 else step
            conversation.append({"content": text, "role": "user"})
            conversation.append({"content": "+", "role": "assistant"})
            convs.append(render(tpl, conversation, bos, eos))
        return {"convs": convs}
    if fmt == "chat-outcome":
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": problem}, {"role": "assistant", "content": "\n\n".join(steps)}]
        return {"text": render(tpl, messages, bos, eos)}
    raise ValueError("unknown format " + fmt)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        jobs = json.load(f)
    with open(argv[1], "w", encoding="utf-8") as f:
        json.dump([run(j) for j in jobs], f, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

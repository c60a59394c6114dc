// A llama.cpp host whose layers may live on RPC workers (ggml's RPC backend).
//
// Built next to llama.cpp's own ggml-rpc-server by `terminus rpc build` (terminus/p2p/rpc_build.py);
// Terminus drives it over stdin/stdout. One request at a time:
//   in:  "GEN <max_tokens> <nbytes> [<temp> <top_p> <top_k> <seed>]\n" + prompt bytes (raw text,
//        special tokens parsed)
//        "CHAT …same header…" + one user message (the model's chat template is applied)
//        "MSGS …same header…" + messages as "role\0content\0" pairs (the chat template is applied)
//        "CANCEL\n" while tokens stream: stop this generation (it ends with "E … cancelled")
//   out: "X MEM <free> <needed>\n" and exit when the workers' free memory cannot hold their part
//        (--need-remote BYTES), else
//        "READY <n_layer> <n_remote_devices>\n" once loaded, then per request
//        "T <token id> <hex of the token's bytes>\n" per token and "E <n_prompt> <n_gen> <stop|length>\n",
//        or "X <message>\n" for a request that failed.
// A temperature of 0 (or none given) decodes greedily; above 0, top-k, top-p, temperature and a
// seeded draw, in llama.cpp's usual order. A worker that disappears makes ggml abort this process: the caller sees
// the pipe close and reports it as a typed error.
#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "llama.h"

#include <poll.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

static std::vector<std::string> split(const std::string & text, char sep) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    std::string part;
    while (std::getline(in, part, sep)) {
        if (!part.empty()) parts.push_back(part);
    }
    return parts;
}

static void say(const std::string & line) {
    fputs(line.c_str(), stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

int main(int argc, char ** argv) {
    std::string model_path, rpc, tensor_split;
    int n_gpu_layers = 999, threads = 1, n_ctx = 1024;
    unsigned long long need_remote = 0;  // bytes the workers must hold together
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i], value = argv[i + 1];
        if (flag == "-m") model_path = value;
        else if (flag == "--rpc") rpc = value;
        else if (flag == "--ts") tensor_split = value;
        else if (flag == "-ngl") n_gpu_layers = std::atoi(value.c_str());
        else if (flag == "-t") threads = std::atoi(value.c_str());
        else if (flag == "-c") n_ctx = std::atoi(value.c_str());
        else if (flag == "--need-remote") need_remote = std::strtoull(value.c_str(), nullptr, 10);
        else { say("X unknown flag " + flag); return 2; }
    }
    if (model_path.empty()) { say("X -m MODEL is required"); return 2; }

    llama_log_set([](ggml_log_level level, const char * text, void *) {
        if (level >= GGML_LOG_LEVEL_WARN) fputs(text, stderr);
    }, nullptr);
    llama_backend_init();
    ggml_backend_load_all();
    std::vector<ggml_backend_dev_t> devices;
    for (const auto & endpoint : split(rpc, ',')) {
        ggml_backend_reg_t reg = ggml_backend_rpc_add_server(endpoint.c_str());
        if (reg == nullptr) { say("X cannot reach RPC worker " + endpoint); return 3; }
        for (size_t d = 0; d < ggml_backend_reg_dev_count(reg); d++) {
            devices.push_back(ggml_backend_reg_dev_get(reg, d));
        }
    }
    const size_t n_remote = devices.size();
    if (n_remote && need_remote) {  // the memory check covers the whole group, before any load
        unsigned long long free_sum = 0;
        for (auto * dev : devices) {
            size_t free = 0, total = 0;
            ggml_backend_dev_memory(dev, &free, &total);
            free_sum += free;
        }
        if (free_sum < need_remote) {
            say("X MEM " + std::to_string(free_sum) + " " + std::to_string(need_remote));
            return 6;
        }
    }
    devices.push_back(nullptr);

    std::vector<float> split_values(llama_max_devices(), 0.0f);
    auto shares = split(tensor_split, ',');
    for (size_t i = 0; i < shares.size() && i < split_values.size(); i++) {
        split_values[i] = std::strtof(shares[i].c_str(), nullptr);
    }

    llama_model_params mp = llama_model_default_params();
    mp.devices = n_remote ? devices.data() : nullptr;
    mp.n_gpu_layers = n_remote ? n_gpu_layers : 0;
    mp.split_mode = LLAMA_SPLIT_MODE_LAYER;
    if (!shares.empty()) mp.tensor_split = split_values.data();
    if (n_remote == 0) {
        static ggml_backend_dev_t none[] = { nullptr };
        mp.devices = none;  // CPU only, even where other backends are registered
    }
    llama_model * model = llama_model_load_from_file(model_path.c_str(), mp);
    if (model == nullptr) { say("X cannot load " + model_path); return 4; }

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (ctx == nullptr) { say("X cannot create a context"); return 5; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    say("READY " + std::to_string(llama_model_n_layer(model)) + " " + std::to_string(n_remote));

    std::string header;
    while (std::getline(std::cin, header)) {
        std::istringstream fields(header);
        std::string kind;
        int max_tokens = 0;
        size_t nbytes = 0;
        fields >> kind >> max_tokens >> nbytes;
        if (kind == "CANCEL") continue;  // arrived after its generation had already ended
        float temp = 0.0f, top_p = 1.0f;
        int top_k = 0;
        unsigned long seed = LLAMA_DEFAULT_SEED;
        fields >> temp >> top_p >> top_k >> seed;  // optional: absent fields keep the defaults
        std::string text(nbytes, '\0');
        if (nbytes && !std::cin.read(&text[0], nbytes)) break;
        if (kind == "CHAT" || kind == "MSGS") {
            std::vector<std::string> parts;
            if (kind == "CHAT") {
                parts = { "user", text };
            } else {
                size_t at = 0;
                while (at < text.size()) {
                    size_t end = text.find('\0', at);
                    if (end == std::string::npos) end = text.size();
                    parts.push_back(text.substr(at, end - at));
                    at = end + 1;
                }
            }
            if (parts.empty() || parts.size() % 2 != 0) { say("X messages must be role and content pairs"); continue; }
            std::vector<llama_chat_message> messages;
            for (size_t i = 0; i < parts.size(); i += 2) {
                messages.push_back({ parts[i].c_str(), parts[i + 1].c_str() });
            }
            const char * tmpl = llama_model_chat_template(model, nullptr);
            std::vector<char> buffer(text.size() * 2 + 4096);
            int n = llama_chat_apply_template(tmpl, messages.data(), messages.size(), true, buffer.data(), buffer.size());
            if (n < 0) { say("X the model's chat template is not supported"); continue; }
            if ((size_t) n > buffer.size()) {
                buffer.resize(n);
                llama_chat_apply_template(tmpl, messages.data(), messages.size(), true, buffer.data(), buffer.size());
            }
            text.assign(buffer.data(), n);
        } else if (kind != "GEN") {
            say("X unknown request " + kind);
            continue;
        }
        int n_prompt = -llama_tokenize(vocab, text.c_str(), text.size(), nullptr, 0, true, true);
        std::vector<llama_token> tokens(n_prompt);
        llama_tokenize(vocab, text.c_str(), text.size(), tokens.data(), n_prompt, true, true);
        if (n_prompt + max_tokens > n_ctx) { say("X prompt and answer exceed the context"); continue; }
        llama_memory_clear(llama_get_memory(ctx), true);
        llama_sampler * sampler = llama_sampler_chain_init(llama_sampler_chain_default_params());
        if (temp <= 0.0f) {
            llama_sampler_chain_add(sampler, llama_sampler_init_greedy());
        } else {
            if (top_k > 0) llama_sampler_chain_add(sampler, llama_sampler_init_top_k(top_k));
            if (top_p < 1.0f) llama_sampler_chain_add(sampler, llama_sampler_init_top_p(top_p, 1));
            llama_sampler_chain_add(sampler, llama_sampler_init_temp(temp));
            llama_sampler_chain_add(sampler, llama_sampler_init_dist((uint32_t) seed));
        }
        llama_batch batch = llama_batch_get_one(tokens.data(), n_prompt);
        int generated = 0;
        std::string reason = "length";
        llama_token next = 0;
        while (generated < max_tokens) {
            if (llama_decode(ctx, batch) != 0) { reason = "error"; break; }
            next = llama_sampler_sample(sampler, ctx, -1);
            if (llama_vocab_is_eog(vocab, next)) { reason = "stop"; break; }
            char piece[256];
            int n = llama_token_to_piece(vocab, next, piece, sizeof(piece), 0, false);
            std::string hex;
            static const char digits[] = "0123456789abcdef";
            for (int i = 0; i < n; i++) {
                hex += digits[(unsigned char) piece[i] >> 4];
                hex += digits[(unsigned char) piece[i] & 15];
            }
            say("T " + std::to_string(next) + " " + hex);
            generated++;
            struct pollfd input = { 0, POLLIN, 0 };
            if (poll(&input, 1, 0) > 0) {  // "CANCEL" (or stdin closed): the caller left early
                std::string line;
                std::getline(std::cin, line);
                reason = "cancelled";
                break;
            }
            batch = llama_batch_get_one(&next, 1);
        }
        llama_sampler_free(sampler);
        if (reason == "error") { say("X decoding failed"); continue; }
        say("E " + std::to_string(n_prompt) + " " + std::to_string(generated) + " " + reason);
    }
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

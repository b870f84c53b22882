/* chat: a conversation on standard input, answers streamed to standard output.
 *
 *   ./chat MODEL_DIR [MAX_NEW_TOKENS]
 *
 * Each line is one user turn. Commands:
 *   /image PATH   attach an image to the next turn (several may be attached)
 *   /reset        forget the conversation (encoded images stay cached)
 *   /quit         leave (end of input does too)
 * Ctrl-C stops the answer being generated; the conversation keeps what was said. */
#define _POSIX_C_SOURCE 200809L
#include <llavauhd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IMAGES 8

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

/* Polled by the library during image encoding, prefill and decoding. */
static bool should_abort(void *user_data) {
    (void)user_data;
    return interrupted != 0;
}

static bool print_piece(const char *piece, size_t length, void *user_data) {
    (void)user_data;
    fwrite(piece, 1, length, stdout);
    fflush(stdout);
    return true;
}

static void report(const char *what, luhd_status st) {
    fprintf(stderr, "%s: %s: %s\n", what, luhd_status_string(st), luhd_last_error());
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [MAX_NEW_TOKENS]\n", argv[0]);
        return 2;
    }
    luhd_model *model = NULL;
    luhd_status st = luhd_model_load(argv[1], NULL, &model);
    if (st != LUHD_OK) {
        report(argv[1], st);
        return 1;
    }
    luhd_session_params params = luhd_session_default_params();
    params.abort_callback = should_abort;
    luhd_session *session = NULL;
    st = luhd_session_create(model, &params, &session);
    if (st != LUHD_OK) {
        report("session", st);
        luhd_model_free(model);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);

    luhd_sampling_params sampling = luhd_sampling_default_params();
    if (argc > 2) sampling.max_new_tokens = atoi(argv[2]);
    luhd_image *images[MAX_IMAGES];
    int n_images = 0;
    char *line = NULL;
    size_t capacity = 0;
    ssize_t n;
    fprintf(stderr, "> ");
    while ((n = getline(&line, &capacity, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (strcmp(line, "/quit") == 0) break;
        if (strcmp(line, "/reset") == 0) {
            luhd_session_reset(session);
            fprintf(stderr, "(conversation reset)\n> ");
            continue;
        }
        if (strncmp(line, "/image ", 7) == 0) {
            if (n_images == MAX_IMAGES) {
                fprintf(stderr, "at most %d images per turn\n> ", MAX_IMAGES);
                continue;
            }
            st = luhd_image_load_file(line + 7, NULL, &images[n_images]);
            if (st == LUHD_OK) {
                int32_t w = 0, h = 0;
                luhd_image_size(images[n_images++], &w, &h);
                fprintf(stderr, "(image %s, %d x %d, goes with the next message)\n> ", line + 7, w, h);
            } else {
                report(line + 7, st);
                fprintf(stderr, "> ");
            }
            continue;
        }
        if (n == 0) {
            fprintf(stderr, "> ");
            continue;
        }
        interrupted = 0;
        luhd_chat_stats stats = {.struct_size = sizeof stats};
        st = luhd_session_chat(session, line, -1, (const luhd_image *const *)images, n_images, &sampling, print_piece,
                               NULL, NULL, NULL, &stats);
        putchar('\n');
        fflush(stdout);
        for (int i = 0; i < n_images; i++) luhd_image_free(images[i]);
        n_images = 0;
        if (st == LUHD_ERR_CANCELLED) {
            fprintf(stderr, "(stopped)\n");
        } else if (st != LUHD_OK) {
            report("chat", st);
        } else {
            int32_t used = 0, size = 0;
            luhd_session_context(session, &used, &size);
            fprintf(stderr, "(%d tokens, %d of %d positions used, %d reused)\n", stats.n_generated, used, size,
                    stats.n_reused_positions);
        }
        fprintf(stderr, "> ");
    }
    fputc('\n', stderr);
    for (int i = 0; i < n_images; i++) luhd_image_free(images[i]);
    free(line);
    luhd_session_free(session);
    luhd_model_free(model);
    return 0;
}

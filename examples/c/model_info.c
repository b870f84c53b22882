/* model_info: load a model directory and an image, print what the library knows about both.
 *
 *   ./model_info MODEL_DIR [IMAGE]
 */
#include <llavauhd.h>
#include <stdbool.h>
#include <stdio.h>

static bool on_progress(float progress, void *user_data) {
    (void)user_data;
    fprintf(stderr, "\rloading %3.0f%%", progress * 100.0f);
    if (progress >= 1.0f) fputc('\n', stderr);
    return true; /* return false to cancel the load */
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [IMAGE]\n", argv[0]);
        return 2;
    }
    if (luhd_abi_version() != LUHD_ABI_VERSION) {
        fprintf(stderr, "libllavauhd ABI %u, header ABI %d\n", luhd_abi_version(), LUHD_ABI_VERSION);
        return 1;
    }
    printf("llavauhd %s (ABI %u)\n", luhd_version_string(), luhd_abi_version());

    luhd_model_params params = luhd_model_default_params();
    params.progress_callback = on_progress;
    luhd_model *model = NULL;
    luhd_status st = luhd_model_load(argv[1], &params, &model);
    if (st != LUHD_OK) {
        fprintf(stderr, "cannot load %s: %s: %s\n", argv[1], luhd_status_string(st), luhd_last_error());
        return 1;
    }

    luhd_model_properties info = {.struct_size = sizeof info};
    luhd_model_get_properties(model, &info);
    printf("LLM        %s: hidden %d, %d layers, %d heads (%d KV), MLP %d, vocab %d, context %d\n",
           info.architecture, info.hidden_size, info.n_layers, info.n_heads, info.n_kv_heads,
           info.intermediate_size, info.vocab_size, info.max_position_embeddings);
    printf("vision     CLIP: width %d, %d layers, %d heads, MLP %d, patch %d, image %d, layer %d\n",
           info.vision_hidden_size, info.vision_n_layers, info.vision_n_heads, info.vision_intermediate_size,
           info.vision_patch_size, info.vision_image_size, info.vision_select_layer);
    printf("projector  %s, feature_scale_mask %d, %d tokens per view\n", info.projector,
           info.feature_scale_mask, info.tokens_per_view);
    printf("layout     %s, template %s\n", info.token_layout, info.chat_template);
    printf("weights    %lld tensors, %.1f MB, mostly %s\n", (long long)info.n_tensors,
           info.weight_bytes / 1e6, info.weight_dtype);
    printf("compute    %d threads, OpenBLAS core %s\n", info.n_threads, info.blas_core);

    if (argc > 2) {
        luhd_image *image = NULL;
        st = luhd_image_load_file(argv[2], NULL, &image);
        if (st != LUHD_OK) {
            fprintf(stderr, "cannot load %s: %s: %s\n", argv[2], luhd_status_string(st), luhd_last_error());
            luhd_model_free(model);
            return 1;
        }
        int32_t w = 0, h = 0;
        luhd_image_size(image, &w, &h);
        printf("image      %s: %d x %d RGB\n", argv[2], w, h);
        luhd_image_free(image);
    }
    luhd_model_free(model);
    return 0;
}

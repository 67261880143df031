from transformers import TextGenerationPipeline, pipeline


def test_text_generation_pipeline_returns_readable_text(saved_lm):
    generator = pipeline("text-generation", model=str(saved_lm))
    assert type(generator) is TextGenerationPipeline  # transformers' own
    prompt = "The movie was"
    outputs = generator(prompt, max_new_tokens=8, do_sample=False)
    text = outputs[0]["generated_text"]
    assert text.startswith(prompt + " ")  # the continuation does not glue onto the prompt
    assert "xx" not in text  # no raw fastai markers
    assert len(text.split()) >= 4


def test_text_generation_pipeline_batches_prompts_in_order(saved_lm):
    generator = pipeline("text-generation", model=str(saved_lm))
    prompts = ["I loved", "The music was beautiful and", "What"]
    batched = generator(prompts, max_new_tokens=5, do_sample=False, batch_size=3)
    alone = [generator(prompt, max_new_tokens=5, do_sample=False)[0] for prompt in prompts]
    assert [b[0]["generated_text"] for b in batched] == [a["generated_text"] for a in alone]
    assert all(b[0]["generated_text"].startswith(p) for b, p in zip(batched, prompts))

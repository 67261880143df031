"""PyTorch DeViSE, as a transformers model.

DeViSE (Frome, Corrado, Shlens, Bengio, Dean, Ranzato & Mikolov, "DeViSE: A Deep Visual-Semantic Embedding Model",
NeurIPS 2013) trains an image model to predict the word vector of an image's label instead of the label's index. Images
then live in the word-vector space: they can be labelled with words the image model never saw (zero-shot), found by
typing a word, and compared with each other. This port follows fast.ai's 2018 `devise.ipynb` (course part 2, lesson
11): a pretrained body, fastai's concat pooling and a two-layer head trained with the cosine loss, with the backbone
frozen and its features precomputed (`precompute=True`). What we changed or added:

- the output is L2-normalised (`image_embeds`), so similarities are plain dot products;
- the paper's hinge rank loss is an option (`loss_type="hinge_rank"`, margin 0.1, cosine similarity);
- the word vectors travel with the model as a frozen table (`word_embeddings`), so text is embedded the way CLIP's
  text tower does it: `get_text_features` averages the unit vectors of a label's words (fastText's sentence vector),
  and `forward(input_ids=..., pixel_values=...)` gives CLIP's `logits_per_image`, which the stock
  `zero-shot-image-classification` pipeline reads;
- any transformers vision model can be the backbone (`backbone_config`), including our EfficientNet-Lite;
- gradient checkpointing recomputes the backbone's blocks, where the backbone supports it (EfficientNet-Lite, ViT).
"""

import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, logging

from .configuration_devise import DeviseConfig
from .configuration_efficientnet_lite import EfficientNetLiteConfig
from .modeling_efficientnet_lite import EfficientNetLiteModel, _check_pixel_values


logger = logging.get_logger(__name__)

# The Auto classes a folder saved with remote code loads with (see `save_pretrained`).
_AUTO_MAP = {
    "AutoModel": "modeling_devise.DeviseModel",
    "AutoModelForZeroShotImageClassification": "modeling_devise.DeviseModel",
}


def cosine_loss(image_embeds: torch.Tensor, target_embeds: torch.Tensor) -> torch.Tensor:
    """The notebook's `cos_loss`: 1 - mean cosine similarity between predicted and target word vectors."""
    return 1.0 - F.cosine_similarity(image_embeds, target_embeds, dim=-1).mean()


def hinge_rank_loss(
    image_embeds: torch.Tensor, candidate_embeds: torch.Tensor, positive_index: torch.Tensor, margin: float
) -> torch.Tensor:
    """
    The DeViSE paper's hinge rank loss (Frome et al. 2013, eq. 1): for every label j other than the true one,
    `max(0, margin - s(v, t_label) + s(v, t_j))`, summed over j and averaged over the batch. We use the cosine
    similarity s (the embeddings are unit length) where the paper used a dot product with a linear map.

    Args:
        image_embeds: `(batch_size, dim)`, unit length.
        candidate_embeds: `(num_candidates, dim)`, the label vectors to rank against.
        positive_index: `(batch_size,)`, the row of `candidate_embeds` that is each image's label.
        margin: the margin (0.1 in the paper).
    """
    scores = image_embeds @ F.normalize(candidate_embeds, dim=-1).T  # (batch, num_candidates)
    positive = scores.gather(1, positive_index[:, None])  # (batch, 1)
    violations = (margin - positive + scores).clamp(min=0.0)
    is_positive = F.one_hot(positive_index, num_classes=candidate_embeds.shape[0]).bool()
    return violations.masked_fill(is_positive, 0.0).sum(dim=1).mean()


# Copied from ulmfit.models.awd_lstm.layers_awd_lstm._check_floats
def _check_floats(tensor: torch.Tensor, name: str, dtype: torch.dtype) -> torch.Tensor:
    """
    A float input cast to the model's `dtype` (as transformers' vision models cast `pixel_values`), with a clear error
    for an integer or boolean tensor and for NaN or infinite values (one device sync).
    """
    if not tensor.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {tensor.dtype}.")
    tensor = tensor.to(dtype)
    if tensor.numel() and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"`{name}` holds NaN or infinite values (in {dtype}).")
    return tensor


# Copied from ulmfit.models.awd_lstm.layers_awd_lstm._init_batch_norm
def _init_batch_norm(module: nn.Module):
    """
    A BatchNorm layer at identity. Its running statistics are buffers, which transformers 5 does not initialise on its
    own: a layer that `from_pretrained` creates (a new head) has nothing else to set them.
    """
    init.ones_(module.weight)
    init.zeros_(module.bias)
    init.zeros_(module.running_mean)
    init.ones_(module.running_var)
    init.zeros_(module.num_batches_tracked)


class DeviseConcatPooling(nn.Module):
    """
    fastai's `AdaptiveConcatPool2d`: the maximum and the average of every channel over all positions, concatenated
    (maximum first), so the head sees both "is it anywhere" and "how much of it". A ViT-style token sequence is pooled
    over its tokens the same way.
    """

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        if feature_map.dim() == 4:
            positions = feature_map.flatten(2)  # (batch, channels, height, width) -> (batch, channels, positions)
        elif feature_map.dim() == 3:
            positions = feature_map.transpose(1, 2)  # (batch, tokens, channels) -> (batch, channels, tokens)
        else:
            raise ValueError(
                f"The backbone returned a tensor of shape {tuple(feature_map.shape)}; DeViSE pools a feature map "
                "(batch, channels, height, width) or a token sequence (batch, tokens, channels)."
            )
        return torch.cat([positions.amax(dim=-1), positions.mean(dim=-1)], dim=-1)  # (batch, 2 * channels)


class DeviseHead(nn.Module):
    """
    The notebook's head (fastai 0.7 `ConvnetBuilder(..., is_reg=True, xtra_fc=[1024], ps=[0.2, 0.2])`): BatchNorm ->
    Dropout -> Linear -> ReLU, then BatchNorm -> Dropout -> Linear to the word-vector dimension, with no final
    activation (a regression onto word vectors).
    """

    def __init__(self, config: DeviseConfig):
        super().__init__()
        pooled_size = 2 * config.backbone_hidden_size
        self.norm_pooled = nn.BatchNorm1d(pooled_size)
        self.dropout_pooled = nn.Dropout(config.pooled_dropout)
        self.dense = nn.Linear(pooled_size, config.head_hidden_size)
        self.activation = nn.ReLU()
        self.norm_hidden = nn.BatchNorm1d(config.head_hidden_size)
        self.dropout_hidden = nn.Dropout(config.hidden_dropout)
        self.projection = nn.Linear(config.head_hidden_size, config.projection_dim)

    def forward(self, pooled_features: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(self.dense(self.dropout_pooled(self.norm_pooled(pooled_features))))
        return self.projection(self.dropout_hidden(self.norm_hidden(hidden)))


class DeviseWordVectors(nn.Module):
    """
    The frozen word-vector table: row i is the vector of the tokenizer's id i. It is a buffer rather than a parameter,
    so no optimiser or `requires_grad_` call can ever train it; it is saved and loaded with the weights all the same.
    """

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(vocab_size, dim))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(input_ids, self.weight)


@dataclass
class DeviseOutput(ModelOutput):
    """
    Output of [`DeviseModel`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` or `label_embeds` is given):
            The cosine loss or the hinge rank loss (`config.loss_type`).
        logits_per_image (`torch.FloatTensor` of shape `(image_batch_size, text_batch_size)`, *optional*):
            `logit_scale` x cosine similarity of every image to every text (when both are given), as CLIP's.
        logits_per_text (`torch.FloatTensor` of shape `(text_batch_size, image_batch_size)`, *optional*):
            The transpose of `logits_per_image`.
        image_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*):
            Unit-length image embeddings in the word-vector space.
        text_embeds (`torch.FloatTensor` of shape `(text_batch_size, projection_dim)`, *optional*):
            Unit-length text embeddings: the average of each text's unit word vectors, normalised.
        pooler_output (`torch.FloatTensor` of shape `(batch_size, 2 * backbone_hidden_size)`, *optional*):
            The concat-pooled backbone features: what `image_features=` takes, to train the head on cached features.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The backbone's hidden states.
    """

    loss: torch.FloatTensor | None = None
    logits_per_image: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


# Copied from ulmfit.models.awd_lstm.layers_awd_lstm._unreadable_weights
def _unreadable_weights(name_or_path, error: Exception) -> OSError | None:
    """
    An `OSError` naming the model for weights `from_pretrained` could not read (a truncated or empty
    `model.safetensors`, a file given where a folder is expected), or None when `error` is not one of those.
    """
    if type(error).__name__ not in ("SafetensorError", "UnpicklingError", "HeaderTooLarge", "EOFError"):
        return None
    path = os.fspath(name_or_path) if isinstance(name_or_path, (str, os.PathLike)) else str(name_or_path)
    if os.path.isfile(path):
        return OSError(
            f"{path} is a file: `from_pretrained` takes the folder holding config.json and the weights, or a Hub id."
        )
    weights = [os.path.join(path, name) for name in ("model.safetensors", "pytorch_model.bin")]
    found = ", ".join(f"{file} ({os.path.getsize(file):,} bytes)" for file in weights if os.path.isfile(file))
    return OSError(
        f"The weights of {path} cannot be read ({type(error).__name__}: {error}){': ' + found if found else ''}. The "
        "file is truncated, empty or not a checkpoint: save or download the model again."
    )


class DevisePreTrainedModel(PreTrainedModel):
    """Weight initialisation and saving shared by the DeViSE models."""

    config_class = DeviseConfig
    config: DeviseConfig
    base_model_prefix = "devise"
    main_input_name = "pixel_values"
    input_modalities = ("image", "text")
    # `gradient_checkpointing_enable()` reaches the backbone's blocks (EfficientNet-Lite's MBConv blocks, ViT's
    # layers); the head is two small linear layers, not worth recomputing
    supports_gradient_checkpointing = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """
        fastai 0.7's head initialisation (`apply_init(fc_model, kaiming_normal)`, zero biases, BatchNorm at identity)
        and empty word and label tables. The backbone, a transformers model of its own, is initialised by its own
        `_init_weights`, so every Linear and BatchNorm1d met here belongs to the head. transformers 5 calls this on the
        leaf modules whose weights are missing, so the BatchNorm statistics (buffers) must be set here too.
        """
        if isinstance(module, nn.Linear):
            init.kaiming_normal_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            _init_batch_norm(module)
        elif isinstance(module, DeviseWordVectors):
            init.zeros_(module.weight)
        elif isinstance(module, DeviseModel):
            init.zeros_(module.label_embeddings)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """
        `PreTrainedModel.save_pretrained`. The saved config says `use_pretrained_backbone=False` (the checkpoint holds
        the backbone's weights), and a folder saved with remote code loads with every DeViSE Auto class.
        """
        self._update_auto_map()
        use_pretrained_backbone = self.config.use_pretrained_backbone
        self.config.use_pretrained_backbone = False
        try:
            return super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            self.config.use_pretrained_backbone = use_pretrained_backbone

    # Copied from ulmfit.models.awd_lstm.modeling_awd_lstm.AwdLstmPreTrainedModel._update_auto_map
    def _update_auto_map(self):
        """With remote code, add this file's `_AUTO_MAP` to `config.auto_map` (entries already there win)."""
        if self._auto_class is not None:
            self.config.auto_map = {**_AUTO_MAP, **(getattr(self.config, "auto_map", None) or {})}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained` (clear errors for unreadable weights); a frozen backbone stays frozen."""
        try:
            loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except Exception as error:
            unreadable = _unreadable_weights(pretrained_model_name_or_path, error)
            if unreadable is None:
                raise
            raise unreadable from error
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # `output_loading_info=True` gives a tuple
        # loading replaces the parameters, which forgets `requires_grad`
        if model.config.freeze_backbone:
            model.freeze_backbone()
        return loaded


def build_backbone(config: DeviseConfig) -> PreTrainedModel:
    """The vision model of `config.backbone_config`, with the weights of `config.backbone` if asked for."""
    backbone_config = config.backbone_config
    # EfficientNet-Lite is built directly so that remote code needs no Auto registration. The test is by name: remote
    # code loads the config and the model files as separate modules, each with its own copy of the config class.
    is_lite = backbone_config.model_type == EfficientNetLiteConfig.model_type
    model_class = EfficientNetLiteModel if is_lite else AutoModel
    if config.use_pretrained_backbone:
        return model_class.from_pretrained(config.backbone, config=backbone_config)
    if model_class is AutoModel:
        return AutoModel.from_config(backbone_config)
    return model_class(backbone_config)


class DeviseModel(DevisePreTrainedModel):
    """
    DeViSE: an image backbone, concat pooling and the notebook's head, mapping images onto unit-length word vectors;
    plus a frozen word-vector table that embeds text into the same space.

    Training follows the notebook: with `config.freeze_backbone`, compute `get_backbone_features` once per image and
    train the head on them with `forward(image_features=..., label_embeds=...)`; then unfreeze and fine-tune on
    `pixel_values`. Labels are given either as target vectors (`label_embeds`) or as class ids into the label table
    set by `set_label_embeddings`.
    """

    def __init__(self, config: DeviseConfig):
        super().__init__(config)
        self.backbone = build_backbone(config)
        self.pooling = DeviseConcatPooling()
        self.head = DeviseHead(config)
        # frozen word vectors (row i: the tokenizer's id i), the text side of the shared space
        self.word_embeddings = DeviseWordVectors(config.vocab_size, config.projection_dim)
        # the word vector of every training class (`config.id2label` order), for labels given as class ids
        self.register_buffer("label_embeddings", torch.zeros(config.num_labels, config.projection_dim))
        if config.freeze_backbone:
            self.backbone.requires_grad_(False)
        self.post_init()

    # ----------------------------------------------------------------------------------------------------------------
    # Backbone freezing (fastai's `freeze()` + `bn_freeze(True)`)

    def freeze_backbone(self):
        """Stop training the backbone: no gradients, and its BatchNorm statistics stay as they are."""
        self.config.freeze_backbone = True
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def unfreeze_backbone(self):
        """Train the backbone again (fine-tuning after the head has been trained on cached features)."""
        self.config.freeze_backbone = False
        self.backbone.requires_grad_(True)
        self.backbone.train(self.training)

    def train(self, mode: bool = True):
        """`nn.Module.train`, except that a frozen backbone stays in eval mode (fastai's `bn_freeze(True)`)."""
        super().train(mode)
        if self.config.freeze_backbone:
            self.backbone.eval()
        return self

    def _set_gradient_checkpointing(self, enable: bool = True, *args, **kwargs):
        """
        What `gradient_checkpointing_enable()` calls: checkpointing lives in the backbone's blocks, so a backbone
        without it (transformers' ResNet, ConvNext, EfficientNet, ...) gets a clear error instead of transformers'
        note to model authors.
        """
        if enable and not self.backbone.supports_gradient_checkpointing:
            raise ValueError(
                f"DeViSE checkpoints its backbone's blocks, and {type(self.backbone).__name__} does not support "
                "gradient checkpointing. Use a backbone that does (EfficientNet-Lite, ViT), or train the head alone "
                "on cached features (`freeze_backbone=True`), which keeps no backbone activations."
            )
        super()._set_gradient_checkpointing(enable, *args, **kwargs)

    # ----------------------------------------------------------------------------------------------------------------
    # No token embedding to resize

    def get_input_embeddings(self) -> nn.Module:
        """
        DeViSE has no input token embedding: its input is the image, and its word table is a frozen set of pretrained
        vectors that embeds labels and queries, not a trained embedding. Raises `NotImplementedError`, as
        transformers' vision models do (transformers catches it where an input embedding is optional).
        """
        raise NotImplementedError(
            "DeviseModel has no input token embedding: it embeds images, and text through its frozen word-vector "
            "table (`word_embeddings`), which `set_word_vectors` replaces."
        )

    def resize_token_embeddings(self, *args, **kwargs):
        """
        Not supported, deliberately. Resizing would invent word vectors (transformers initialises new rows near the
        mean of the old ones): zero-shot labels and text queries built on them would rank images by noise, and the
        table is frozen, so training could never fix them. To add words, give them real vectors from the same word
        model: `DeviseTokenizer.add_words`, their vectors with `read_word_vectors(path, words=...)`, then
        `set_word_vectors` with the table grown by those rows (`config.vocab_size` follows).
        """
        raise NotImplementedError(
            "DeviseModel's word table holds frozen pretrained word vectors (fastText), not a trained token "
            "embedding: resizing it would make up vectors for the new words. Add words with "
            "`tokenizer.add_words(words)`, read their vectors from the same file with `read_word_vectors(path, "
            "words=words)`, and call `model.set_word_vectors(torch.cat([model.word_embeddings.weight, vectors]))`; "
            "`config.vocab_size` follows."
        )

    # ----------------------------------------------------------------------------------------------------------------
    # Word and label tables

    @torch.no_grad()
    def set_word_vectors(self, vectors: torch.Tensor):
        """
        Replace the word-vector table: row i is the vector of the tokenizer's id i (see
        `load_devise_word_vectors`). The table may grow, e.g. after `DeviseTokenizer.add_words`; `config.vocab_size`
        follows.
        """
        if vectors.dim() != 2 or vectors.shape[1] != self.config.projection_dim:
            raise ValueError(
                f"Word vectors must have shape (num_words, {self.config.projection_dim}) to match projection_dim; "
                f"got {tuple(vectors.shape)}."
            )
        weight = self.word_embeddings.weight
        self.word_embeddings.weight = vectors.detach().to(device=weight.device, dtype=weight.dtype).clone()
        self.config.vocab_size = vectors.shape[0]

    @torch.no_grad()
    def set_label_embeddings(self, label_embeds: torch.Tensor, labels: list[str] | None = None):
        """
        Set the table that class ids index (`forward(labels=...)`, and the candidates of the hinge rank loss): one
        vector per training class, e.g. `get_text_features` of the class names. `labels` (the class names) become
        `config.id2label`.
        """
        if label_embeds.dim() != 2 or label_embeds.shape[1] != self.config.projection_dim:
            raise ValueError(
                f"Label vectors must have shape (num_labels, {self.config.projection_dim}); got "
                f"{tuple(label_embeds.shape)}."
            )
        if labels is not None and len(labels) != label_embeds.shape[0]:
            raise ValueError(f"Got {len(labels)} label names for {label_embeds.shape[0]} label vectors.")
        buffer = self.label_embeddings
        self.label_embeddings = label_embeds.detach().to(device=buffer.device, dtype=buffer.dtype).clone()
        names = labels if labels is not None else [f"LABEL_{index}" for index in range(label_embeds.shape[0])]
        self.config.id2label = dict(enumerate(names))
        self.config.label2id = {name: index for index, name in enumerate(names)}

    # ----------------------------------------------------------------------------------------------------------------
    # Features

    def get_backbone_features(
        self, pixel_values: torch.Tensor, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """
        The concat-pooled backbone features `(batch_size, 2 * backbone_hidden_size)` (and the backbone's hidden states
        if asked): what the notebook's `precompute=True` caches, and what `image_features=` takes.
        """
        if not isinstance(self.backbone, EfficientNetLiteModel):  # which checks its own input
            num_channels = getattr(self.config.backbone_config, "num_channels", None)
            pixel_values = _check_pixel_values(pixel_values, num_channels, self.backbone.dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_backbone):
            outputs = self.backbone(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        pooled = self.pooling(outputs.last_hidden_state)
        return pooled, (outputs.hidden_states if output_hidden_states else None)

    def get_image_features(
        self, pixel_values: torch.Tensor | None = None, image_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Unit-length image embeddings `(batch_size, projection_dim)`, from images or cached backbone features."""
        if (pixel_values is None) == (image_features is None):
            raise ValueError("Give exactly one of `pixel_values` and `image_features` (cached backbone features).")
        if pixel_values is not None:
            image_features, _ = self.get_backbone_features(pixel_values)
        expected = 2 * self.config.backbone_hidden_size
        if image_features.dim() != 2 or image_features.shape[1] != expected:
            raise ValueError(
                f"`image_features` must be concat-pooled backbone features of shape (batch_size, {expected}); got "
                f"{tuple(image_features.shape)}."
            )
        image_features = _check_floats(image_features, "image_features", self.head.dense.weight.dtype)
        return F.normalize(self.head(image_features), dim=-1)

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Unit-length text embeddings `(batch_size, projection_dim)`: the mean of the unit word vectors of each text
        (fastText's `get_sentence_vector`), normalised, so that a multi-word label such as "European fire salamander"
        or a query such as "engine + boat" weighs its words equally.
        """
        if self.config.vocab_size == 0:
            raise ValueError(
                "This DeViSE model has no word vectors (vocab_size=0); load them with `set_word_vectors` (see "
                "`load_devise_word_vectors`) to embed text."
            )
        if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32):
            found = f"dtype {input_ids.dtype}" if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise TypeError(f"`input_ids` must be an integer tensor of word ids, got {found}.")
        if input_ids.dim() != 2 or input_ids.size(1) == 0:
            raise ValueError(
                f"`input_ids` must have shape (text_batch_size, words) with at least one word, got "
                f"{tuple(input_ids.shape)}."
            )
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"`attention_mask` has shape {tuple(attention_mask.shape)}, `input_ids` {tuple(input_ids.shape)}."
            )
        if input_ids.numel():
            low, high = torch.stack([input_ids.min(), input_ids.max()]).tolist()  # one sync for both ends
            if low < 0 or high >= self.config.vocab_size:
                raise ValueError(
                    f"`input_ids` holds ids in [{low}, {high}] but the word table has {self.config.vocab_size} rows: "
                    "was this text encoded with another model's tokenizer?"
                )
        word_vectors = F.normalize(self.word_embeddings(input_ids), dim=-1)  # (batch, words, dim)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.to(word_vectors.dtype)[..., None]  # (batch, words, 1)
        counts = mask.sum(dim=1)  # (batch, 1)
        # one sync for both checks: mask values other than 0 and 1, and texts with no word
        binary = ((attention_mask == 0) | (attention_mask == 1)).all()
        binary, has_empty = torch.stack([binary, (counts == 0).any()]).tolist()
        if not binary:
            raise ValueError("`attention_mask` must hold 0 (padding) and 1 (word) only.")
        if has_empty:
            empty = (counts[:, 0] == 0).nonzero()[:, 0].tolist()
            raise ValueError(f"Texts {empty} of the batch have no words to embed (`attention_mask` rows of zeros).")
        return F.normalize((word_vectors * mask).sum(dim=1) / counts, dim=-1)

    # ----------------------------------------------------------------------------------------------------------------
    # Forward

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        label_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> DeviseOutput | tuple:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`, *optional*):
                Images, as [`DeviseImageProcessor`] prepares them.
            image_features (`torch.FloatTensor` of shape `(batch_size, 2 * backbone_hidden_size)`, *optional*):
                Cached concat-pooled backbone features (`get_backbone_features`, or `pooler_output` of an earlier
                call) instead of `pixel_values`: the head is then trained without running the backbone.
            input_ids (`torch.LongTensor` of shape `(text_batch_size, words)`, *optional*):
                Texts encoded by [`DeviseTokenizer`] (labels, queries); with images, `logits_per_image` compares
                every image with every text.
            attention_mask (`torch.LongTensor` of shape `(text_batch_size, words)`, *optional*):
                1 for words, 0 for padding.
            labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
                Class ids into the label table (`set_label_embeddings`).
            label_embeds (`torch.FloatTensor` of shape `(batch_size, projection_dim)`, *optional*):
                Target word vectors, instead of `labels`. The hinge rank loss then ranks against the other distinct
                targets of the batch.

        Inputs the model cannot take raise a `ValueError` or `TypeError` naming the argument: the wrong rank, size or
        dtype (integer pixels or features, float ids or labels), no pixel or no word, ids or class ids out of range,
        mask values other than 0 and 1, NaN or infinite floats, labels for an empty batch (whose mean loss would be
        NaN). Float inputs of another floating dtype (float64 from numpy) are cast to the model's, as transformers'
        vision models cast `pixel_values`. An empty batch of images or texts gives empty outputs, as torch's layers do.
            output_hidden_states (`bool`, *optional*):
                Also return the backbone's hidden states.
            return_dict (`bool`, *optional*):
                Return a [`DeviseOutput`] (default) or a tuple.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if pixel_values is not None and image_features is not None:
            raise ValueError("Give `pixel_values` or cached `image_features`, not both.")

        # 1. Images -> concat-pooled backbone features -> head -> unit vectors
        pooled = hidden_states = image_embeds = None
        if pixel_values is not None:
            pooled, hidden_states = self.get_backbone_features(pixel_values, output_hidden_states)
        elif image_features is not None:
            pooled = image_features
        if pooled is not None:
            image_embeds = self.get_image_features(image_features=pooled)

        # 2. Texts -> averaged unit word vectors; with images, CLIP-style similarity logits
        text_embeds = logits_per_image = logits_per_text = None
        if input_ids is not None:
            text_embeds = self.get_text_features(input_ids, attention_mask)
        if image_embeds is not None and text_embeds is not None:
            logits_per_image = self.config.logit_scale * image_embeds @ text_embeds.T  # (images, texts)
            logits_per_text = logits_per_image.T

        # 3. The loss against the labels' word vectors
        loss = None
        if labels is not None or label_embeds is not None:
            if image_embeds is None:
                raise ValueError("A loss needs images: give `pixel_values` or `image_features` with the labels.")
            loss = self._loss(image_embeds, labels, label_embeds)

        output = DeviseOutput(
            loss=loss,
            logits_per_image=logits_per_image,
            logits_per_text=logits_per_text,
            image_embeds=image_embeds,
            text_embeds=text_embeds,
            pooler_output=pooled,
            hidden_states=hidden_states,
        )
        return output if return_dict else output.to_tuple()

    def _loss(
        self, image_embeds: torch.Tensor, labels: torch.Tensor | None, label_embeds: torch.Tensor | None
    ) -> torch.Tensor:
        """The configured loss, with targets as class ids into the label table or as vectors."""
        if labels is not None and label_embeds is not None:
            raise ValueError("Give the targets as `labels` (class ids) or as `label_embeds` (vectors), not both.")
        batch_size = image_embeds.size(0)
        if batch_size == 0:
            name = "labels" if labels is not None else "label_embeds"
            raise ValueError(f"`{name}` were given for an empty batch: a loss needs at least one image.")
        if label_embeds is not None:
            if label_embeds.shape != image_embeds.shape:
                raise ValueError(
                    f"`label_embeds` must have shape {tuple(image_embeds.shape)} (one word vector per image); got "
                    f"{tuple(label_embeds.shape)}."
                )
            label_embeds = _check_floats(label_embeds, "label_embeds", image_embeds.dtype)
            # the distinct targets of the batch are the candidates of the hinge rank loss
            candidates, positive_index = torch.unique(label_embeds, dim=0, return_inverse=True)
        else:
            if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32):
                found = f"dtype {labels.dtype}" if isinstance(labels, torch.Tensor) else type(labels).__name__
                raise TypeError(f"`labels` must be class ids (an integer tensor), got {found}.")
            if labels.numel() != batch_size or labels.dim() > 2:
                raise ValueError(
                    f"`labels` must be one class id per image, shape ({batch_size},); got {tuple(labels.shape)}."
                )
            labels = labels.reshape(-1).long()
            num_labels = self.label_embeddings.shape[0]
            low, high = torch.stack([labels.min(), labels.max()]).tolist()  # one sync for both ends
            if low < 0 or high >= num_labels:
                raise ValueError(
                    f"`labels` holds class ids in [{low}, {high}] but the label table has {num_labels} rows; set it "
                    "with `set_label_embeddings`."
                )
            candidates, positive_index = self.label_embeddings, labels
            if (candidates[labels].norm(dim=-1) == 0).any():
                raise ValueError(
                    "Some labels have an all-zero vector: set the label table with `set_label_embeddings`."
                )
        if self.config.loss_type == "hinge_rank":
            return hinge_rank_loss(image_embeds, candidates, positive_index, self.config.hinge_margin)
        return cosine_loss(image_embeds, candidates[positive_index])


__all__ = ["DeviseModel", "DeviseOutput", "DevisePreTrainedModel"]

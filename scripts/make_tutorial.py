"""Write docs/tutorial.ipynb from the cells below (run after editing them; outputs empty).

The notebook is kept without outputs: CI executes it (``make notebook``), and a reader's
run fills them in. ``python scripts/make_tutorial.py`` rewrites it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# tfcnn tutorial: what a pair CNN's score really measures

This notebook trains the published pair CNN of MacLean (2019) on the bundled, real
Arabidopsis nitrogen compendium under two protocols, compares it with controls that
cannot read regulation, explains one pair and scans a few TFs.

Set the environment variable `TFCNN_TUTORIAL_EPOCHS` to train fewer epochs (CI uses 2);
the default is the study's 30.""",
    ),
    (
        "code",
        """import os

import matplotlib.pyplot as plt
import pandas as pd

import tfcnn

EPOCHS = int(os.environ.get("TFCNN_TUTORIAL_EPOCHS", "30"))  # the study's 30 by default
SEED = 0
print(f"tfcnn {tfcnn.__version__}, {EPOCHS} epochs per model")""",
    ),
    (
        "md",
        """## 1. Load the bundled data

`nitrogen-expression` is 2,286 genes x 131 conditions; `nitrogen-edges` are the
ConnecTF-validated edges. Positives are the TARGET, ChIP-seq and literature edges
(`tfcnn datasets` lists the bundled data and its provenance).""",
    ),
    (
        "code",
        """expression = tfcnn.load_expression("nitrogen-expression")
edges = tfcnn.load_interactions(
    "nitrogen-edges", evidence=["TARGET", "CHIPSeq", "Litterature"]
)
print(f"{len(expression.genes):,} genes x {len(expression.samples)} samples")
print(f"{len(edges.pairs):,} known pairs from {edges.pairs.tf.nunique()} TFs")""",
    ),
    (
        "md",
        """## 2. Pairs under two protocols

* **paper**: random negative pairs, random 80/10/10 split (the study's protocol);
* **strict**: whole TFs held out (`tf-holdout`) and `degree-matched` negatives, so every
  TF and every target is as often negative as positive.""",
    ),
    (
        "code",
        """protocols = {
    "paper": {"negatives": "random", "split": "random"},
    "strict": {"negatives": "degree-matched", "split": "tf-holdout"},
}
pairs = {
    name: tfcnn.build_pairs(expression, edges, seed=SEED, **protocol)
    for name, protocol in protocols.items()
}
for name, pair_set in pairs.items():
    counts = pair_set.table.groupby(["split", "label"]).size().unstack()
    print(name, counts.to_dict("index"))""",
    ),
    (
        "md",
        """## 3. Train the published architecture on each

`tfcnn.train` fits a `PairCNN` (a scikit-learn estimator) on the train split, monitors
validation and scores the test split.""",
    ),
    (
        "code",
        """models = {
    name: tfcnn.train(pair_set, epochs=EPOCHS, seed=SEED)
    for name, pair_set in pairs.items()
}""",
    ),
    (
        "md",
        """## 4. Compare with the controls

`tfcnn.evaluate` scores the model and, on the same test pairs, Pearson's r and three
node-identity controls: a TF-only score, a target-only score and the target frequency
(how often the target was a positive in training; it ignores expression). The
**within-target** AUROC ranks pairs that share a target, so recognising the target does
not help.""",
    ),
    (
        "code",
        """reports = {name: tfcnn.evaluate(models[name], pairs[name], n_boot=200) for name in pairs}
rows = []
for name, report in reports.items():
    for method, metrics in report["methods"].items():
        rows.append(
            {
                "protocol": name,
                "method": method,
                "pooled AUROC": metrics["pooled_auroc"],
                "within-target AUROC": metrics["within_target_auroc"],
            }
        )
table = pd.DataFrame(rows).set_index(["protocol", "method"]).round(3)
table""",
    ),
    (
        "code",
        """for name, report in reports.items():
    print(f"== {name}")
    for warning in report["warnings"]:
        print("-", warning)""",
    ),
    (
        "code",
        """ax = table["pooled AUROC"].unstack("protocol").plot.barh(figsize=(7, 4))
ax.axvline(0.5, color="grey", linestyle=":")
ax.set_xlabel("test AUROC (pooled)")
ax.set_title("The CNN beside controls that cannot read regulation")
plt.tight_layout()""",
    ),
    (
        "md",
        """Under the paper's protocol, a control that only recognises the TF scores as well as
or better than the CNN. Under the strict protocol, neither the CNN nor the controls are
far from chance. See the Concepts page for the full table at 30 epochs.

## 5. Explain one pair

Which samples drove the score of the strict model's best-scored test positive?""",
    ),
    (
        "code",
        """from tfcnn.api import scores_table
from tfcnn.explain.plots import plot_pair
from tfcnn.inference.matrix import scoring_matrix

model = models["strict"]
scores = scores_table(model, pairs["strict"], split="test")
best = scores[scores.label == 1].sort_values("probability").iloc[-1]
explanation = tfcnn.explain_pair(model, best.tf, best.target)
x_pair, tf_id, target_id = scoring_matrix(model, None).pair(best.tf, best.target)
print(f"{tf_id} -> {target_id}: p = {explanation.probability:.3f}; peak window "
      f"{explanation.window_samples[0]} .. {explanation.window_samples[-1]}")
plot_pair(explanation, x_pair, tf_id, target_id)""",
    ),
    (
        "md",
        """## 6. Scan a few TFs

`tfcnn.predict` scores regulators against every gene (`tfcnn scan` does the same for
all TF x target pairs, streamed to Parquet). Beside each probability it gives the pair's
percentile within the regulator's row, which says what the score adds beyond the TF.""",
    ),
    (
        "code",
        """test_tfs = sorted(set(scores.tf))[:3]
result = tfcnn.predict(model, test_tfs)
top = result.table.sort_values("probability", ascending=False)
top.groupby("regulator").head(3)[["regulator", "target", "probability"]]""",
    ),
    (
        "code",
        """fig, ax = plt.subplots(figsize=(7, 3.5))
for tf, group in result.table.groupby("regulator"):
    ax.hist(group.probability, bins=40, histtype="step", label=tf)
ax.set_xlabel("probability")
ax.set_ylabel("genes")
ax.legend(title="regulator")
ax.set_title("Scores of three held-out TFs against every gene")
plt.tight_layout()""",
    ),
    (
        "md",
        """A regulator whose scores are high for most genes is flagged in `result.notes`:
its high scores say more about the TF than about the pairs.""",
    ),
    ("code", """for note in result.notes:\n    print("-", note)"""),
]


def build() -> nbformat.NotebookNode:
    """The notebook, from CELLS."""
    cells = [
        new_markdown_cell(text) if kind == "md" else new_code_cell(text) for kind, text in CELLS
    ]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"  # stable ids: rewriting gives the same file
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/tutorial.ipynb")
    nbformat.validate(nb := build())
    nbformat.write(nb, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

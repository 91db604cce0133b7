#!/usr/bin/env Rscript
# Regenerate tests/fixtures/rma/: small SYNTHETIC probe-level data (seeded) and what
# Bioconductor computes from it, so tfcnn's numpy RMA can be tested without R.
#
#   Rscript scripts/make_rma_fixtures.R        (from the repository root)
#
# Needs the Debian packages r-bioc-preprocesscore and r-bioc-affy (affyio comes with it).
# Writes:
#   bg_input.tsv / bg_expected.tsv         preprocessCore::rma.background.correct
#   quantile_input.tsv / quantile_expected.tsv   preprocessCore::normalize.quantiles (ties)
#   polish_input.tsv / polish_expected.tsv      preprocessCore::subColSummarizeMedianpolishLog
#   synthetic.cdf                           a 20 x 20 chip, text (GC3.0) CDF, 12 probesets
#   arrayN.CEL[.gz]                         6 arrays: CEL v3 text and v4 binary, some gzipped
#   cel_intensities.tsv                     the intensities affyio reads from those files
#   rma_expected.tsv                        RMA of the 6 arrays (bg, quantile, median polish
#                                           of log2 PM), as affy::rma computes it
#   versions.txt                            R / package versions used
suppressPackageStartupMessages({
  library(preprocessCore)
  library(affyio)
})

out <- file.path("tests", "fixtures", "rma")
dir.create(out, recursive = TRUE, showWarnings = FALSE)
set.seed(20190401)

write_tsv <- function(m, name, rownames_as = NULL) {
  df <- as.data.frame(m)
  if (!is.null(rownames_as)) df <- cbind(setNames(data.frame(rownames(m)), rownames_as), df)
  # 17 significant digits: the Python side reads exactly these doubles.
  num <- vapply(df, is.numeric, logical(1))
  df[num] <- lapply(df[num], function(v) sprintf("%.17g", v))
  write.table(df, file.path(out, name), sep = "\t", quote = FALSE, row.names = FALSE)
}

# Probe intensities shaped like a scanner's: log-normal background + exponential signal.
synthetic_intensities <- function(n) {
  round(rlnorm(n, meanlog = 5, sdlog = 0.35) + rexp(n, rate = 1 / 400) * rbinom(n, 1, 0.6), 1)
}

# -- 1. background correction ------------------------------------------------------------
bg <- sapply(1:4, function(i) synthetic_intensities(2500))
colnames(bg) <- paste0("a", 1:4)
write_tsv(bg, "bg_input.tsv")
bgc <- rma.background.correct(bg)
colnames(bgc) <- colnames(bg)
write_tsv(bgc, "bg_expected.tsv")

# -- 2. quantile normalisation, with many ties ----------------------------------------------
q <- matrix(sample(1:60, 300 * 5, replace = TRUE), 300, 5)
q[, 5] <- q[, 5] + 0.5 * (seq_len(300) %% 2)
colnames(q) <- paste0("a", 1:5)
write_tsv(q, "quantile_input.tsv")
qn <- normalize.quantiles(q)
colnames(qn) <- colnames(q)
write_tsv(qn, "quantile_expected.tsv")

# -- 3. median polish summaries (log2 of positive values), groups of different sizes -----
sizes <- c(11, 11, 8, 3, 16, 1, 2, 11)
groups <- rep(sprintf("ps%02d", seq_along(sizes)), sizes)
pol <- sapply(1:6, function(i) synthetic_intensities(length(groups)))
colnames(pol) <- paste0("a", 1:6)
write_tsv(cbind(data.frame(group = groups), pol), "polish_input.tsv")
mp <- subColSummarizeMedianpolishLog(pol, groups)
colnames(mp) <- colnames(pol)
write_tsv(mp, "polish_expected.tsv", rownames_as = "group")

# -- 4. a synthetic chip: CDF (text) + CEL files (v3 text, v4 binary), then RMA ----------
nc <- 20L
nr <- 20L
probesets <- c(sprintf("2449%02d_at", 1:10), "AFFX-BioB-5_at", "AFFX-Athal-Actin_3_s_at")
atoms <- c(8L, 8L, 8L, 8L, 8L, 8L, 8L, 8L, 6L, 11L, 4L, 8L)
ncells <- 2L * sum(atoms)
pos <- sample(0:(nc * nr - 1L), ncells + 4L)  # 4 extra cells go to a QC unit
comp <- c(A = "T", C = "G", G = "C", T = "A")
cdf <- c(
  "[CDF]", "Version=GC3.0", "",
  "[Chip]", "Name=SYNTHETIC-CHIP", sprintf("Rows=%d", nr), sprintf("Cols=%d", nc),
  sprintf("NumberOfUnits=%d", length(probesets)), sprintf("MaxUnit=%d", 1000L + length(probesets)),
  "NumQCUnits=1", "ChipReference=", "",
  "[QC1]", "Type=4", "NumberCells=4", "CellHeader=X\tY\tPROBE\tPLEN\tATOM\tINDEX\tMATCH\tBG"
)
for (i in 1:4) {
  p <- pos[ncells + i]
  cdf <- c(cdf, sprintf("Cell%d=%d\t%d\tN\t25\t%d\t%d\t0\t0", i, p %% nc, p %/% nc, i - 1L, p))
}
cdf <- c(cdf, "")
pm_index <- integer(0)
pm_group <- character(0)
k <- 0L
for (u in seq_along(probesets)) {
  na <- atoms[u]
  unit <- 1000L + u - 1L
  cdf <- c(cdf,
    sprintf("[Unit%d]", unit), "Name=NONE", "Direction=1", sprintf("NumAtoms=%d", na),
    sprintf("NumCells=%d", 2L * na), sprintf("UnitNumber=%d", unit), "UnitType=3",
    "NumberBlocks=1", "",
    sprintf("[Unit%d_Block1]", unit), sprintf("Name=%s", probesets[u]), "BlockNumber=1",
    sprintf("NumAtoms=%d", na), sprintf("NumCells=%d", 2L * na), "StartPosition=0",
    sprintf("StopPosition=%d", na - 1L),
    paste("CellHeader=X", "Y", "PROBE", "FEAT", "QUAL", "EXPOS", "POS", "CBASE", "PBASE",
          "TBASE", "ATOM", "INDEX", "CODONIND", "CODON", "REGIONTYPE", "REGION", sep = "\t"))
  cell <- 0L
  for (a in seq_len(na)) {
    tbase <- sample(names(comp), 1)
    # PM and MM in random order within the atom, as real CDFs list them either way.
    kinds <- sample(c("PM", "MM"))
    for (kind in kinds) {
      k <- k + 1L
      p <- pos[k]
      pbase <- if (kind == "PM") comp[[tbase]] else tbase
      cdf <- c(cdf, sprintf(
        "Cell%d=%d\t%d\tN\tcontrol\t%s\t%d\t13\tC\t%s\t%s\t%d\t%d\t-1\t-1\t99\t",
        cell + 1L, p %% nc, p %/% nc, probesets[u], a - 1L, pbase, tbase, a - 1L, p))
      cell <- cell + 1L
      if (kind == "PM") {
        pm_index <- c(pm_index, p)
        pm_group <- c(pm_group, probesets[u])
      }
    }
  }
  cdf <- c(cdf, "")
}
writeLines(cdf, file.path(out, "synthetic.cdf"))

# Per-probeset expression levels differ by array, so RMA has something to find.
level <- matrix(rexp(length(probesets) * 6, 1 / 300), length(probesets), 6,
                dimnames = list(probesets, NULL))
arrays <- list()
for (j in 1:6) {
  x <- round(rlnorm(nc * nr, meanlog = 4.8, sdlog = 0.3), 1)
  pm_cells <- pm_index + 1L
  x[pm_cells] <- round(x[pm_cells] + level[pm_group, j] * rlnorm(length(pm_cells), 0, 0.3), 1)
  arrays[[j]] <- x
}

dat_header <- paste0(
  "[0..46101]  SYNTH:CLS=20   RWS=20   XIN=3  YIN=3  VE=17        2.0 05/01/19 12:00:00 ",
  "   SYNTHETIC-CHIP.1sq                  6"
)
write_cel_v3 <- function(x, path, gz = FALSE) {
  con <- if (gz) gzfile(path, "w") else file(path, "w")
  on.exit(close(con))
  xs <- (seq_along(x) - 1L) %% nc
  ys <- (seq_along(x) - 1L) %/% nc
  lines <- c(
    "[CEL]", "Version=3", "", "[HEADER]", sprintf("Cols=%d", nc), sprintf("Rows=%d", nr),
    sprintf("TotalX=%d", nc), sprintf("TotalY=%d", nr), "OffsetX=0", "OffsetY=0",
    "GridCornerUL=0 0", "GridCornerUR=100 0", "GridCornerLR=100 100", "GridCornerLL=0 100",
    "Axis-invertX=0", "AxisInvertY=0", "swapXY=0", paste0("DatHeader=", dat_header),
    "Algorithm=Percentile", "AlgorithmParameters=Percentile:75;CellMargin:2", "",
    "[INTENSITY]", sprintf("NumberCells=%d", length(x)), "CellHeader=X\tY\tMEAN\tSTDV\tNPIXELS",
    sprintf("%3d\t%3d\t%.1f\t%.1f\t%3d", xs, ys, x, round(x / 10, 1), 16L), "",
    "[MASKS]", "NumberCells=0", "CellHeader=X\tY", "",
    "[OUTLIERS]", "NumberCells=0", "CellHeader=X\tY", "",
    "[MODIFIED]", "NumberCells=0", "CellHeader=X\tY\tORIGMEAN", ""
  )
  writeLines(lines, con)
}
write_cel_v4 <- function(x, path, gz = FALSE) {
  con <- if (gz) gzfile(path, "wb") else file(path, "wb")
  on.exit(close(con))
  int <- function(v) writeBin(as.integer(v), con, size = 4, endian = "little")
  str <- function(s) {
    int(nchar(s, type = "bytes"))
    writeChar(s, con, eos = NULL)
  }
  header <- paste0(
    sprintf("Cols=%d\nRows=%d\nTotalX=%d\nTotalY=%d\nOffsetX=0\nOffsetY=0\n", nc, nr, nc, nr),
    "GridCornerUL=0 0\nGridCornerUR=100 0\nGridCornerLR=100 100\nGridCornerLL=0 100\n",
    "Axis-invertX=0\nAxisInvertY=0\nswapXY=0\n", "DatHeader=", dat_header, "\n",
    "Algorithm=Percentile\nAlgorithmParameters=Percentile:75;CellMargin:2\n"
  )
  int(64L); int(4L); int(nc); int(nr); int(length(x))
  str(header); str("Percentile"); str("Percentile:75;CellMargin:2")
  int(2L)          # cell margin
  int(0L); int(0L) # outliers, masked
  int(0L)          # sub-grids
  for (v in x) {
    writeBin(as.numeric(v), con, size = 4, endian = "little")
    writeBin(as.numeric(round(v / 10, 1)), con, size = 4, endian = "little")
    writeBin(16L, con, size = 2, endian = "little")
  }
}
files <- c("array1.CEL", "array2.CEL", "array3.CEL.gz", "array4.CEL", "array5.CEL",
           "array6.CEL.gz")
write_cel_v3(arrays[[1]], file.path(out, files[1]))
write_cel_v3(arrays[[2]], file.path(out, files[2]))
write_cel_v3(arrays[[3]], file.path(out, files[3]), gz = TRUE)
write_cel_v4(arrays[[4]], file.path(out, files[4]))
write_cel_v4(arrays[[5]], file.path(out, files[5]))
write_cel_v4(arrays[[6]], file.path(out, files[6]), gz = TRUE)

# Read the files back with Bioconductor's own CEL reader: what RMA starts from.
intens <- sapply(file.path(out, files), function(f) {
  read.celfile(f, intensity.means.only = TRUE)$INTENSITY$MEAN
})
colnames(intens) <- sub("\\.CEL(\\.gz)?$", "", files)
stopifnot(max(abs(intens - do.call(cbind, arrays))) < 1e-3)
write_tsv(intens, "cel_intensities.tsv")

# The CDF as Bioconductor reads it must give the same PM cells (checks synthetic.cdf).
cdf_list <- read.cdffile.list(file.path(out, "synthetic.cdf"))
stopifnot(length(cdf_list$Unit) == length(probesets))
affyio_pm <- unlist(lapply(cdf_list$Unit, function(u) {
  cells <- u$Unit_Block[[1]]$Unit_Block_Cells
  is_pm <- comp[as.character(cells$tbase)] == as.character(cells$pbase)
  cells$y[is_pm] * nc + cells$x[is_pm]
}))
stopifnot(setequal(affyio_pm, pm_index), length(affyio_pm) == length(pm_index))

pm <- intens[pm_index + 1L, , drop = FALSE]
expr <- subColSummarizeMedianpolishLog(normalize.quantiles(rma.background.correct(pm)), pm_group)
colnames(expr) <- colnames(intens)
write_tsv(expr, "rma_expected.tsv", rownames_as = "probeset")

writeLines(c(
  R.version.string,
  paste("preprocessCore", packageVersion("preprocessCore")),
  paste("affyio", packageVersion("affyio")),
  paste("affy", packageVersion("affy"))
), file.path(out, "versions.txt"))
cat("fixtures written to", out, "\n")

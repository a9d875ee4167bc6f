# Independent fit of a peerlens parallel mediation model (used by test_mediation.py).
# Usage: Rscript mediation_boot.R wide.csv resamples.csv "m1,m2" level
# wide.csv: one row per participant with ps, d_y, y_0 and d_<m>, <m>_0 per mediator (outcome "y");
# resamples.csv: columns resample, row (1-based rows of wide.csv drawn in that resample).
# Fits the paths with lm() on the data and on every resample; prints
# "path<TAB>name<TAB>estimate<TAB>p<TAB>ci_low<TAB>ci_high" (quantile type 7).
args <- commandArgs(trailingOnly = TRUE)
w <- read.csv(args[1])
draws <- read.csv(args[2])
meds <- strsplit(args[3], ",")[[1]]
level <- as.numeric(args[4])
base <- paste(c("y_0", paste0(meds, "_0")), collapse = " + ")
paths <- function(d) {
  out <- list()
  a <- list()
  for (m in meds) {
    fit <- lm(as.formula(paste0("d_", m, " ~ ps + ", base)), data = d)
    a[[m]] <- coef(fit)[["ps"]]
    out[[paste0("a[", m, "]")]] <- c(a[[m]], summary(fit)$coefficients["ps", 4])
  }
  fit <- lm(as.formula(paste("d_y ~ ps +", paste0("d_", meds, collapse = " + "), "+", base)),
            data = d)
  co <- summary(fit)$coefficients
  for (m in meds) out[[paste0("b[", m, "]")]] <- co[paste0("d_", m), c(1, 4)]
  for (m in meds) out[[paste0("indirect[", m, "]")]] <- c(a[[m]] * co[paste0("d_", m), 1], NA)
  out[["indirect[total]"]] <- c(sum(sapply(meds, function(m) a[[m]] * co[paste0("d_", m), 1])),
                                NA)
  out[["direct"]] <- co["ps", c(1, 4)]
  tot <- summary(lm(as.formula(paste("d_y ~ ps +", base)), data = d))$coefficients
  out[["total"]] <- tot["ps", c(1, 4)]
  out
}
est <- paths(w)
boot <- sapply(split(draws$row, draws$resample), function(rows) {
  sapply(paths(w[rows, ]), function(x) unname(x[1]))
})
alpha <- (1 - level) / 2
for (name in names(est)) {
  q <- quantile(boot[name, ], c(alpha, 1 - alpha), type = 7, names = FALSE)
  cat(sprintf("path\t%s\t%.17g\t%.17g\t%.17g\t%.17g\n", name, est[[name]][1], est[[name]][2],
              q[1], q[2]))
}

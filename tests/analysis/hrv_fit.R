# Independent HRV model fit (used by test_hrv_models.py): the validity filter, log transform,
# reactivity and lme4 fit done in R from the raw HRV result rows.
# Usage: Rscript hrv_fit.R hrv.csv metric_column window|reactivity
# Prints "fixed<TAB>k<TAB>estimate<TAB>se", "vc<TAB>group<TAB>variance", "loglik", "nobs".
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
metric <- args[2]
what <- args[3]
suppressPackageStartupMessages(library(lmerTest))
ok <- d$status == "ok" & d$valid == "True" & d$derivation != "stale" & !is.na(d[[metric]]) &
  d[[metric]] > 0
d <- d[ok, ]
d$y <- log(d[[metric]])
if (what == "reactivity") {
  s <- d[d$label == "session", c("participant", "arm", "timepoint", "y")]
  b <- d[d$label == "baseline", c("participant", "timepoint", "y")]
  d <- merge(s, b, by = c("participant", "timepoint"), suffixes = c("_s", "_b"))
  d$y <- d$y_s - d$y_b
} else {
  d <- d[d$label == what, ]
}
d$arm <- factor(d$arm, levels = c("control", "PS"))
d$timepoint <- factor(d$timepoint, levels = c("baseline", "week12", "week24"))
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                    check.conv.grad = .makeCC("ignore", tol = 1e-3))
m <- lmer(y ~ arm * timepoint + (1 | participant), data = d, REML = TRUE, control = ctrl)
co <- summary(m, ddf = "Satterthwaite")$coefficients
for (k in seq_len(nrow(co))) {
  cat(sprintf("fixed\t%d\t%.12g\t%.12g\n", k - 1, co[k, "Estimate"], co[k, "Std. Error"]))
}
vc <- as.data.frame(VarCorr(m))
for (i in seq_len(nrow(vc))) cat(sprintf("vc\t%s\t%.12g\n", vc$grp[i], vc$vcov[i]))
cat(sprintf("loglik\t%.12g\n", as.numeric(logLik(m))))
cat(sprintf("nobs\t%d\n", nobs(m)))

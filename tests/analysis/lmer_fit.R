# Independent fit of a peerlens mixed model with lme4 + lmerTest (used by test_mixed.py).
# Usage: Rscript lmer_fit.R data.csv "c0,c1,..." [slope_column | random-effects terms]
# (a third argument holding "|" is used as the random part as it stands, e.g.
# "(0 + d | worker) + (1 | participant)" for the partially nested model of nested.py).
# data.csv holds y, participant and the fixed-effect design columns exactly as peerlens built them,
# so both fits have the same parameterisation. Prints one "key<TAB>value" line per result.
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$participant <- as.character(d$participant)
terms <- strsplit(args[2], ",")[[1]]
random <- if (length(args) >= 3) args[3] else ""
suppressPackageStartupMessages(library(lmerTest))
re <- if (random == "") {
  "(1 | participant)"
} else if (grepl("|", random, fixed = TRUE)) {
  random
} else {
  paste0("(1 + ", random, " | participant)")
}
f <- as.formula(paste("y ~ 0 +", paste(terms, collapse = " + "), "+", re))
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                    check.conv.grad = .makeCC("ignore", tol = 1e-3))
m <- lmer(f, data = d, REML = TRUE, control = ctrl)
co <- summary(m, ddf = "Satterthwaite")$coefficients
for (term in terms) {
  cat(sprintf("fixed\t%s\t%.12g\t%.12g\t%.12g\n", term, co[term, "Estimate"],
              co[term, "Std. Error"], co[term, "df"]))
}
vc <- as.data.frame(VarCorr(m))
for (i in seq_len(nrow(vc))) {
  var1 <- ifelse(is.na(vc$var1[i]), "", vc$var1[i])
  var2 <- ifelse(is.na(vc$var2[i]), "", vc$var2[i])
  cat(sprintf("vc\t%s\t%s\t%s\t%.12g\n", vc$grp[i], var1, var2, vc$vcov[i]))
}
cat(sprintf("loglik\t%.12g\n", as.numeric(logLik(m))))
cat(sprintf("version\tR %s; lme4 %s; lmerTest %s\n", getRversion(), packageVersion("lme4"),
            packageVersion("lmerTest")))

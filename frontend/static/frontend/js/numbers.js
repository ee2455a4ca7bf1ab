// Probabilities as people read them. Rounding never reaches 100 % or 0 %: a classifier is never certain,
// and "100.0%" beside a diagnosis reads as certainty to a clinician (0.9999976 is "more than 99.9%").
export function formatPercent(probability, digits = 1) {
  const value = probability * 100;
  const step = 10 ** -digits;
  if (value >= 100 - step / 2) return `>${(100 - step).toFixed(digits)}%`;
  if (value < step / 2) return `<${step.toFixed(digits)}%`;
  return `${value.toFixed(digits)}%`;
}

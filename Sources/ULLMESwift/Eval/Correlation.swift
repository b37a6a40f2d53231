/// Correlation coefficients for STS evaluation (as scipy.stats.pearsonr / spearmanr).

/// Pearson's r of two equally long samples (0 if either is constant or they are shorter than 2).
public func pearson(_ x: [Double], _ y: [Double]) -> Double {
    precondition(x.count == y.count, "pearson: samples differ in length")
    let n = x.count
    guard n >= 2 else { return 0 }
    let mx = x.reduce(0, +) / Double(n), my = y.reduce(0, +) / Double(n)
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for i in 0..<n {
        let dx = x[i] - mx, dy = y[i] - my
        sxy += dx * dy; sxx += dx * dx; syy += dy * dy
    }
    guard sxx > 0, syy > 0 else { return 0 }
    return max(-1, min(1, sxy / (sxx.squareRoot() * syy.squareRoot())))
}

/// Ranks 1...n, tied values getting the average of their ranks (scipy.stats.rankdata "average").
public func averageRanks(_ x: [Double]) -> [Double] {
    let order = x.indices.sorted { x[$0] < x[$1] || (x[$0] == x[$1] && $0 < $1) }
    var ranks = [Double](repeating: 0, count: x.count)
    var i = 0
    while i < order.count {
        var j = i
        while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
        let r = Double(i + j + 2) / 2  // mean of the 1-based ranks i+1 ... j+1
        for k in i...j { ranks[order[k]] = r }
        i = j + 1
    }
    return ranks
}

/// Spearman's rho: Pearson's r of the average ranks.
public func spearman(_ x: [Double], _ y: [Double]) -> Double {
    pearson(averageRanks(x), averageRanks(y))
}

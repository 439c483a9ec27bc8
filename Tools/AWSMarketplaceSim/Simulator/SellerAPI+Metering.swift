import Foundation
import Synchronization

/// BatchMeterUsage as AWS documents it: 1 to 25 records of one product; the customer named by
/// AWS account id (with its license ARN) or, the deprecated way, by customer identifier, never
/// both; a record 6 hours old or more, from before the subscription began, or in a dimension the
/// product does not have refuses the whole call; identical records are deduplicated (the same
/// MeteringRecordId), the same customer, dimension and hour with another quantity comes back
/// DuplicateRecord; a customer without an active subscription comes back CustomerNotSubscribed,
/// except that usage from before a cancellation is taken for one more hour after it.
extension SellerAPI {
    func throttleUnprocessed(next count: Int) {
        unprocessedBudget.store(max(0, count), ordering: .relaxed)
    }

    func delayMetering(calls: Int, by delay: Duration) {
        meteringDelay.withLock { $0 = (max(0, calls), delay) }
    }

    /// A record as checked: whose it is and the hour it is for.
    private struct Checked {
        var record: [String: Any]
        var subscription: SimulatorStore.Subscription?
        var awsAccountID: String?
        var licenseArn: String?
        var dimension: String
        var hour: Int
        var quantity: Int
    }

    func batchMeterUsage(_ input: [String: Any]) async throws -> Reply {
        let productCode = input["ProductCode"] as? String
        guard let records = input["UsageRecords"] as? [[String: Any]], (1...25).contains(records.count) else {
            return .error(400, "InvalidParameterException", "UsageRecords takes 1 to 25 records")
        }
        let now = Date().timeIntervalSince1970
        var checked: [Checked] = []
        var dimensions: [String: Set<String>] = [:]  // each product's, read once a call
        for record in records {
            guard let dimension = record["Dimension"] as? String, !dimension.isEmpty,
                let timestamp = (record["Timestamp"] as? NSNumber)?.doubleValue
            else {
                return .error(400, "InvalidParameterException", "each record needs a Dimension and a Timestamp")
            }
            let quantity = (record["Quantity"] as? NSNumber)?.intValue ?? 0
            guard (0...Int(Int32.max)).contains(quantity) else {
                return .error(400, "InvalidParameterException", "Quantity must be between 0 and 2147483647")
            }
            let customerIdentifier = record["CustomerIdentifier"] as? String
            let awsAccountID = record["CustomerAWSAccountId"] as? String
            let licenseArn = record["LicenseArn"] as? String
            if customerIdentifier != nil && awsAccountID != nil {
                return .error(400, "InvalidParameterException", "CustomerIdentifier and CustomerAWSAccountId are mutually exclusive")
            }
            guard customerIdentifier != nil || awsAccountID != nil else {
                return .error(400, "InvalidParameterException", "each record needs CustomerAWSAccountId or CustomerIdentifier")
            }
            guard productCode != nil || licenseArn != nil else {
                return .error(400, "InvalidParameterException", "give ProductCode, or a LicenseArn in each record")
            }
            guard timestamp > now - Double(6 * meteringHour), timestamp < now + Double(meteringHour) else {
                return .error(400, "TimestampOutOfBoundsException", "a record's Timestamp is 6 hours old or more, or in the future")
            }
            var subscription: SimulatorStore.Subscription?
            if let customerIdentifier {
                subscription = try await store.subscription(customerIdentifier: customerIdentifier)
            } else if let awsAccountID {
                subscription = try await store.subscription(awsAccountID: awsAccountID, licenseArn: licenseArn, productCode: productCode)
            }
            if let licenseArn, subscription?.licenseArn != licenseArn {
                return .error(400, "InvalidLicenseException", "the LicenseArn is not a license of this customer")
            }
            if let found = subscription, let productCode, found.productCode != productCode { subscription = nil }
            let product = productCode ?? subscription?.productCode ?? ""
            if dimensions[product] == nil { dimensions[product] = try await store.dimensions(productCode: product) }
            guard dimensions[product]?.contains(dimension) == true else {
                return .error(400, "InvalidUsageDimensionException", "\(dimension) is not a dimension of \(product)")
            }
            let hour = Int(timestamp) / meteringHour * meteringHour
            if let found = subscription, hour < Int(found.startsAt.timeIntervalSince1970) / meteringHour * meteringHour {
                return .error(400, "TimestampOutOfBoundsException", "a record's Timestamp is before the subscription began")
            }
            checked.append(
                Checked(
                    record: record, subscription: subscription, awsAccountID: awsAccountID, licenseArn: licenseArn, dimension: dimension,
                    hour: hour, quantity: quantity))
        }

        var results: [[String: Any]] = []
        var unprocessed: [[String: Any]] = []
        for item in checked {
            guard let subscription = item.subscription, Self.takesUsage(subscription, hour: item.hour, now: now, meteringHour: meteringHour)
            else {
                results.append(["UsageRecord": item.record, "Status": "CustomerNotSubscribed"])
                continue
            }
            if unprocessedBudget.load(ordering: .relaxed) > 0 {
                unprocessedBudget.subtract(1, ordering: .relaxed)
                unprocessed.append(item.record)
                continue
            }
            switch try await store.recordUsage(
                subscription, awsAccountID: item.awsAccountID, licenseArn: item.licenseArn, dimension: item.dimension, hour: item.hour,
                quantity: item.quantity)
            {
            case .recorded(let id): results.append(["UsageRecord": item.record, "MeteringRecordId": id, "Status": "Success"])
            case .duplicate: results.append(["UsageRecord": item.record, "Status": "DuplicateRecord"])
            }
        }
        let delay = meteringDelay.withLock { pending -> Duration? in
            guard pending.calls > 0 else { return nil }
            pending.calls -= 1
            return pending.delay
        }
        if let delay { try await Task.sleep(for: delay) }
        return Reply(status: 200, body: ["Results": results, "UnprocessedRecords": unprocessed])
    }

    /// An active subscription takes usage; a cancelled one, usage from before the cancellation
    /// for one hour after it.
    private static func takesUsage(_ subscription: SimulatorStore.Subscription, hour: Int, now: TimeInterval, meteringHour: Int) -> Bool {
        if subscription.state == "active" { return true }
        guard let cancelledAt = subscription.cancelledAt?.timeIntervalSince1970 else { return false }
        return Double(hour) < cancelledAt && now < cancelledAt + Double(meteringHour)
    }
}

/// The upstream's success envelope `{"code":200,"data":…}`.
struct Envelope<Data: Encodable>: Encodable {
    var code: Int
    var data: Data
}
